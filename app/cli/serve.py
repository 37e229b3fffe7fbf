"""``taskdesk serve``: the engine headless, on a plain asyncio loop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from typing import Any

from app.core.paths import Paths
from app.core.taskspec import TaskSpec

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the engine headless (lab server)")
    add_lab_arguments(serve)
    serve.add_argument("--no-host-tasks", action="store_true",
                       help="do not run local.* tasks on this host")
    serve.add_argument("--demo-load", type=int, default=0, metavar="N",
                       help="demo: keep about N demo.capture tasks queued")
    serve.add_argument("--max-tasks-per-job", type=int, default=1)
    serve.add_argument("--lease", type=float, default=30.0, help="lease seconds")


def add_lab_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--demo", action="store_true",
                        help="run over a simulated lab of virtual phones (no phones needed)")
    parser.add_argument("--phones", type=int, default=12, help="demo: number of virtual phones")
    parser.add_argument("--adb-host", default="127.0.0.1")
    parser.add_argument("--adb-port", type=int, default=5037)


class LabRuntime:
    """The device side of a run: the real adb server, or a simulated lab."""

    def __init__(self, args: argparse.Namespace, paths: Paths) -> None:
        self.args = args
        self.paths = paths
        self.lab: Any = None

    def start(self) -> Any:
        from app.devices.adb import AdbProvider

        if self.args.demo:
            from app.devices.sim import SimLab

            if not 1 <= self.args.phones <= 200:
                raise ValueError("--phones must be between 1 and 200")
            self.paths.sim.mkdir(parents=True, exist_ok=True)
            self.lab = SimLab(self.args.phones, self.paths.sim)
            self.lab.start()
            log.info("simulated lab: %d phones behind adb server 127.0.0.1:%d",
                     self.args.phones, self.lab.adb_port)
            return AdbProvider(self.lab.adb_host, self.lab.adb_port)
        return AdbProvider(self.args.adb_host, self.args.adb_port)

    def stop(self) -> None:
        if self.lab is not None:
            self.lab.stop()
            self.lab = None


async def run_serve(args: argparse.Namespace, paths: Paths, database: str | None) -> int:
    from app.engine.config import EngineConfig
    from app.engine.engine import Engine

    loop = asyncio.get_running_loop()
    runtime = LabRuntime(args, paths)
    provider = await loop.run_in_executor(None, runtime.start)
    engine = Engine(
        paths=paths, provider=provider, database=database,
        host_enabled=not args.no_host_tasks,
        config=EngineConfig(max_tasks_per_job=args.max_tasks_per_job, lease_s=args.lease),
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows
            loop.add_signal_handler(sig, stop.set)
    try:
        await engine.start()
        print(f"taskdesk engine running (data: {paths.data_dir}); Ctrl-C stops it", flush=True)
        feeder = (loop.create_task(_demo_feeder(engine, args.demo_load), name="demo-feeder")
                  if args.demo and args.demo_load > 0 else None)
        await stop.wait()
        if feeder is not None:
            feeder.cancel()
    finally:
        await engine.stop()
        await loop.run_in_executor(None, runtime.stop)
    print("taskdesk engine stopped", flush=True)
    return 0


async def _demo_feeder(engine: Any, depth: int) -> None:
    """Keep about ``depth`` demo tasks pending so the demo lab stays busy."""
    from app.core.enums import TaskState
    from app.store import tasks

    while True:
        counts = await engine.store.call(tasks.count_by_state)
        missing = depth - counts.get(TaskState.PENDING, 0)
        if missing > 0:
            await engine.submit_many([
                TaskSpec(kind="demo.capture", payload={"steps": 4, "step_ms": 400},
                         source="system", created_by="demo")
            ] * missing)
        await asyncio.sleep(2.0)
