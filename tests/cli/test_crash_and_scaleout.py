"""Reliability promises, with real processes: kill -9 loses nothing, and two engines
sharing one database never run the same task twice."""

from __future__ import annotations

import collections
import json
import os
import time
from pathlib import Path

import pytest

from tests.cli.procs import Serve, free_port, run_cli


def _snapshot(data_dir: Path, database: str | None = None):
    """Read tasks and executions from the store (in this test process)."""
    from app.store import executions, tasks
    from app.store.db import close_database
    from app.store.schema import open_store

    open_store(database or data_dir / "taskdesk.db")
    try:
        all_tasks = tasks.list_tasks(limit=100_000)
        rows = [e for t in all_tasks for e in executions.executions_for_task(t.uid)]
        return all_tasks, rows
    finally:
        close_database()


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_kill_9_mid_run_then_restart_finishes_every_task_exactly_once(tmp_path: Path):
    data = tmp_path / "data"
    n = 120
    with Serve(data, "--demo", "--phones", "6", "--lease", "5", log=tmp_path / "s1.log") as s1:
        s1.wait_ready()
        run_cli("task", "add", "demo.capture", "--payload", '{"steps": 3, "step_ms": 150}',
                "--count", str(n), "--max-attempts", "5", data_dir=data)

        def some_done() -> bool:
            tasks, _ = _snapshot(data)
            return sum(t.state.value == "succeeded" for t in tasks) >= n // 4

        _wait(some_done, 90, "a quarter of the tasks")
        s1.kill9()

    tasks, rows = _snapshot(data)
    in_flight = [t for t in tasks if t.state.value in ("claimed", "running")]
    assert in_flight, "the kill should have caught tasks mid-run"

    with Serve(data, "--demo", "--phones", "6", "--lease", "5", log=tmp_path / "s2.log") as s2:
        s2.wait_ready()
        _wait(lambda: all(t.state.is_terminal for t in _snapshot(data)[0]), 120,
              "every task to finish after restart")
        assert s2.stop() == 0

    tasks, rows = _snapshot(data)
    assert len(tasks) == n and {t.state.value for t in tasks} == {"succeeded"}
    by_task = collections.defaultdict(list)
    for row in rows:
        by_task[row.task_id].append(row)
    for task in tasks:
        statuses = [r.status.value for r in by_task[task.uid]]
        assert statuses.count("SUCCESS") == 1, (task.uid, statuses)
    assert not [r for r in rows if r.status.value == "STARTED"], "an execution stayed STARTED"
    lost = [r for r in rows if r.status.value == "FAILURE"]
    assert lost and {r.metadata.get("reason") for r in lost} <= {"lease_expired", "device_lost"}


def _two_engines(tmp_path: Path, database: str | None) -> None:
    data_a, data_b = tmp_path / "a", tmp_path / "b"
    shared = ["--database", database] if database else []
    n = 300
    if database is None:
        data_b = data_a  # same SQLite file
    port = str(free_port())  # no adb server there: these engines run host tasks only
    g = tuple(shared)
    with Serve(data_a, "--adb-port", port, log=tmp_path / "a.log", global_args=g) as a, \
            Serve(data_b, "--adb-port", port, log=tmp_path / "b.log", global_args=g) as b:
        a.wait_ready()
        b.wait_ready()
        tasks_file = tmp_path / "tasks.json"
        tasks_file.write_text(json.dumps([
            {"kind": "local.execute", "payload": {"argv": ["true"]}, "target": "host"}
        ] * n))
        run_cli(*shared, "task", "add", "--file", str(tasks_file), data_dir=data_a)

        def finished() -> bool:
            tasks, _ = _snapshot(data_a, database)
            return len(tasks) == n and all(t.state.is_terminal for t in tasks)

        _wait(finished, 120, "all host tasks")
        assert a.stop() == 0 and b.stop() == 0
    tasks, rows = _snapshot(data_a, database)
    assert {t.state.value for t in tasks} == {"succeeded"}
    per_task = collections.Counter(r.task_id for r in rows)
    assert set(per_task.values()) == {1}, "a task ran twice"
    workers = collections.Counter(r.metadata.get("worker") for r in rows)
    assert len(workers) == 2, f"both engines should have taken work: {workers}"


def test_two_engine_processes_on_one_sqlite_file_never_claim_the_same_task(tmp_path: Path):
    _two_engines(tmp_path, None)


@pytest.mark.pg
@pytest.mark.skipif(not os.environ.get("TASKDESK_TEST_PG_URL"), reason="no PostgreSQL")
def test_two_engine_processes_on_postgresql_never_claim_the_same_task(tmp_path: Path):
    from app.store.db import close_database, open_database
    from app.store.models import ALL_MODELS

    url = os.environ["TASKDESK_TEST_PG_URL"]
    db = open_database(url)
    db.drop_tables(list(ALL_MODELS), safe=True, cascade=True)
    close_database()
    _two_engines(tmp_path, url)
