"""``taskdesk serve``: the engine headless, on a plain asyncio loop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import signal
from typing import Any

from app.core.heap import settle_heap
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
    serve.add_argument("--max-tasks-per-job", type=int, default=None,
                       help="tasks a device takes per job (default: the setting, 1)")
    serve.add_argument("--lease", type=float, default=None,
                       help="lease seconds (default: the setting, 30)")


def add_lab_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--demo", action="store_true",
                        help="run over a simulated lab of virtual phones (no phones needed)")
    parser.add_argument("--phones", type=int, default=None,
                        help="demo: number of virtual phones (default: the setting, 12)")
    parser.add_argument("--adb-host", default=None,
                        help="adb server host (default: the setting, 127.0.0.1)")
    parser.add_argument("--adb-port", type=int, default=None,
                        help="adb server port (default: the setting, 5037)")


def stored_config(args: argparse.Namespace, paths: Paths, database: str | None) -> Any:
    """Engine settings saved in the store (Settings dialog), with command-line values
    for the adb server and demo lab winning over stored ones. Fills ``args`` in place."""
    from app.core.settings import Settings
    from app.engine.config import EngineConfig
    from app.store.db import close_database
    from app.store.schema import open_store
    from app.store.settings import load_settings

    try:
        open_store(database or paths.database, paths.backups)
        try:
            values = load_settings()
        finally:
            close_database()
    except Exception as exc:  # a store problem is reported when the engine opens it
        log.warning("stored settings not read: %s", exc)
        values = Settings({})
    if getattr(args, "adb_host", None) is None:
        args.adb_host = values.get_str("adb.host")
    if getattr(args, "adb_port", None) is None:
        args.adb_port = values.get_int("adb.port")
    if getattr(args, "phones", None) is None:
        args.phones = values.get_int("demo.phones")
    return EngineConfig(
        lease_s=values.get_float("engine.lease_s"),
        max_tasks_per_job=values.get_int("engine.max_tasks_per_job"),
        device_lost_grace_s=values.get_float("engine.device_lost_grace_s"),
        battery_interval_s=values.get_float("engine.battery_interval_s"),
        rate_limit_per_device=values.get_int("engine.rate_limit_per_device"),
        rate_window_s=values.get_float("engine.rate_window_s"),
        retention_days=values.get_int("history.retention_days"),
        timeout_minutes=values.get_int("history.timeout_minutes"),
        cleanup_cron=values.get_str("maintenance.cleanup_cron"),
        timeout_sweep_cron=values.get_str("maintenance.timeout_sweep_cron"),
    )


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
    from app.engine.engine import Engine

    loop = asyncio.get_running_loop()
    config = stored_config(args, paths, database)
    if args.max_tasks_per_job is not None:
        config = dataclasses.replace(config, max_tasks_per_job=args.max_tasks_per_job)
    if args.lease is not None:
        config = dataclasses.replace(config, lease_s=args.lease)
    runtime = LabRuntime(args, paths)
    provider = await loop.run_in_executor(None, runtime.start)
    engine = Engine(
        paths=paths, provider=provider, database=database,
        host_enabled=not args.no_host_tasks, config=config,
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows
            loop.add_signal_handler(sig, stop.set)
    try:
        await engine.start()
        settle_heap()
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
