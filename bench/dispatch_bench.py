"""Dispatch benchmark: TaskDesk's full task cycle against huey's SqliteHuey, same run,
same disk.

    .venv/bin/pip install -e '.[dev]'     # huey is a dev dependency
    .venv/bin/python bench/dispatch_bench.py [--tasks 10000] [--history-rows 1000000]

Prints:
1. full-cycle throughput for N tasks, the median of alternating rounds — TaskDesk:
   enqueue → claim → run a no-op kind → complete with its execution record; huey:
   enqueue → dequeue → execute → result — and the ratio (target: TaskDesk ≥ 4× huey);
2. enqueue-to-start latency on an idle simulated phone (target p50 < 20 ms);
3. a filtered history page over 1,000,000 executions (target < 5 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.enums import ExecStatus  # noqa: E402
from app.core.heap import settle_heap  # noqa: E402
from app.core.paths import Paths  # noqa: E402
from app.core.targets import Target  # noqa: E402
from app.core.taskspec import TaskSpec  # noqa: E402
from app.engine.config import EngineConfig  # noqa: E402
from app.engine.engine import Engine  # noqa: E402
from app.engine.kinds.base import HOST_TARGETS, TaskKind  # noqa: E402
from app.engine.kinds.registry import default_registry  # noqa: E402


class NoopKind(TaskKind):
    name = "bench.noop"
    title = "no-op (benchmark)"
    targets = HOST_TARGETS

    async def run(self, ctx: Any, payload: dict[str, Any]) -> Any:
        return {"ok": True}


def bench_huey(n: int, workdir: Path) -> float:
    from huey import SqliteHuey

    huey = SqliteHuey(filename=str(workdir / "huey.db"))

    @huey.task()
    def noop(i: int) -> int:
        return i

    settle_heap()  # both peers run with the collector settings TaskDesk runs with
    start = time.perf_counter()
    results = [noop(i) for i in range(n)]
    for _ in range(n):
        huey.execute(huey.dequeue())
    values = [r.get() for r in results]
    elapsed = time.perf_counter() - start
    assert values == list(range(n))
    return n / elapsed


async def bench_taskdesk(n: int, workdir: Path) -> float:
    registry = default_registry(load_plugins=False)
    registry.register(NoopKind())
    engine = Engine(paths=Paths(workdir / "td"), registry=registry,
                    config=EngineConfig(host_concurrency=256, external_poll_s=60))
    await engine.start()
    settle_heap()  # as `taskdesk serve` does once started
    try:
        specs = [TaskSpec(kind="bench.noop", target=Target.host(), source="api")] * n
        # Count finished attempts from the engine's own events: polling the store
        # would load the very thread being measured.
        finished = asyncio.Event()
        succeeded = 0

        def on_event(event: Any) -> None:
            nonlocal succeeded
            if event.status == "SUCCESS":
                succeeded += 1
                if succeeded == n:
                    finished.set()

        from app.engine.bus import ExecutionFinished

        engine.bus.subscribe(on_event, (ExecutionFinished,))
        start = time.perf_counter()
        for i in range(0, n, 1000):
            await engine.submit_many(specs[i:i + 1000])
        await asyncio.wait_for(finished.wait(), timeout=600)
        elapsed = time.perf_counter() - start
        from app.core.history import ExecutionFilter
        from app.store import history

        stats = await engine.store.call(history.execution_stats, ExecutionFilter())
        assert stats["success"] == n, stats
        print(f"    store: {engine.store.calls} calls in {engine.store.commits} commits; "
              f"{engine.dispatcher.claims} claim transactions")
        return n / elapsed
    finally:
        await engine.stop()


async def bench_latency(workdir: Path, samples: int = 40) -> list[float]:
    from app.devices.adb import AdbProvider
    from app.devices.sim import SimLab
    from app.store import executions

    lab = SimLab(1, workdir / "lab")
    lab.start()
    engine = Engine(paths=Paths(workdir / "lat"),
                    provider=AdbProvider(lab.adb_host, lab.adb_port),
                    config=EngineConfig(external_poll_s=60))
    await engine.start()
    try:
        await engine.wait_until(lambda: any(v.dispatch == "idle" for v in engine.device_views()),
                                timeout=20)
        out = []
        for _ in range(samples):
            t0 = time.time()
            rec = await engine.submit(TaskSpec(kind="adb.shell", payload={"command": "true"}))

            async def started(uid: str = rec.uid) -> bool:
                return (await engine.get_task(uid)).state.is_terminal

            await engine.wait_until(started, timeout=10, interval=0.002)
            (ex,) = await engine.store.call(executions.executions_for_task, rec.uid)
            assert ex.started_at is not None
            out.append((ex.started_at - t0) * 1000)
            await asyncio.sleep(0.05)
        return out
    finally:
        await engine.stop()
        lab.stop()


def bench_history(rows: int, workdir: Path) -> tuple[float, float, int]:
    from app.core.history import ExecutionFilter
    from app.store import history
    from app.store.db import close_database
    from app.store.models import Execution
    from app.store.schema import open_store

    db = open_store(workdir / "hist.db")
    rng = random.Random(1)
    statuses = [s.value for s in ExecStatus]
    modules = ["default", "capture", "install", "system"]
    names = ["adb.shell", "demo.capture", "adb.install", "adb.screenshot", "local.execute"]
    serials = [f"127.0.0.1:{40000 + i}" for i in range(50)]
    base = time.time() - 30 * 86400
    t0 = time.perf_counter()
    batch = []
    with db.atomic():
        for i in range(rows):
            created = base + i * (30 * 86400 / rows)
            batch.append({
                "task_id": f"t{i:08d}", "task_name": rng.choice(names),
                "module": rng.choice(modules), "status": rng.choice(statuses),
                "attempt": 1, "device_serial": rng.choice(serials), "created_by": "bench",
                "args": "[]", "kwargs": "{}", "metadata": "{}", "created_at": created,
                "started_at": created, "finished_at": created + 1,
            })
            if len(batch) == 5000:
                Execution.insert_many(batch).execute()
                batch.clear()
        if batch:
            Execution.insert_many(batch).execute()
    fill = time.perf_counter() - t0
    flt = ExecutionFilter.from_query({"status": "FAILURE", "module": "capture"})
    timings = []
    for _ in range(50):
        t = time.perf_counter()
        page = history.query_executions(flt, limit=50)
        timings.append((time.perf_counter() - t) * 1000)
        assert page.items  # (a full page of 50 once there are enough rows)
    close_database()
    return statistics.median(timings), fill, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--history-rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5,
                        help="alternating huey/TaskDesk rounds; medians are compared "
                             "(a shared machine's noise moves single runs by ±20%%)")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="taskdesk-bench-") as tmp:
        work = Path(tmp)
        print(f"1. full cycle, {args.tasks} tasks, median of {args.rounds} alternating rounds")
        huey_rates, td_rates = [], []
        for round_no in range(args.rounds):
            # Each round on fresh files: a run never inherits the last one's database.
            round_dir = work / f"round{round_no}"
            round_dir.mkdir()
            huey_rates.append(bench_huey(args.tasks, round_dir))
            td_rates.append(asyncio.run(bench_taskdesk(args.tasks, round_dir)))
            print(f"    round {round_no + 1}: huey {huey_rates[-1]:6.0f} tasks/s, "
                  f"TaskDesk {td_rates[-1]:6.0f} tasks/s")
        huey_rate, td_rate = statistics.median(huey_rates), statistics.median(td_rates)
        print(f"    huey SqliteHuey : {huey_rate:8.0f} tasks/s")
        print(f"    TaskDesk        : {td_rate:8.0f} tasks/s")
        ratio = td_rate / huey_rate
        print(f"    ratio           : {ratio:8.2f}x  (target >= 4x) "
              f"{'OK' if ratio >= 4 else 'BELOW TARGET'}")
        if not args.skip_latency:
            lat = asyncio.run(bench_latency(work))
            p50 = statistics.median(lat)
            p95 = sorted(lat)[int(len(lat) * 0.95) - 1]
            print(f"2. enqueue-to-start on an idle simulated phone: p50 {p50:.1f} ms, "
                  f"p95 {p95:.1f} ms (target p50 < 20 ms) {'OK' if p50 < 20 else 'BELOW TARGET'}")
        page_ms, fill_s, rows = bench_history(args.history_rows, work)
        print(f"3. filtered history page over {rows:,} executions: {page_ms:.2f} ms "
              f"(target < 5 ms) {'OK' if page_ms < 5 else 'BELOW TARGET'} "
              f"[fill took {fill_s:.0f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
