"""Claim atomicity across real processes sharing one store (SQLite file or PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import peewee

from app.core.enums import TaskState
from app.store import tasks
from tests.store.helpers import spec

ROOT = Path(__file__).resolve().parents[2]
N_TASKS = 400


def test_two_processes_never_claim_the_same_task(store: peewee.Database, store_location: str,
                                                 tmp_path: Path) -> None:
    tasks.enqueue_many([spec(uid=f"p{i:04d}") for i in range(N_TASKS)])
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = {
        owner: subprocess.Popen(
            [sys.executable, "-m", "tests.store.claim_worker", store_location, owner, str(go)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for owner in ("proc-a", "proc-b")
    }
    deadline = time.monotonic() + 60
    while not all(Path(f"{go}.{owner}.ready").exists() for owner in workers):
        assert time.monotonic() < deadline, "workers did not start"
        assert all(proc.poll() is None for proc in workers.values()), "a worker died"
        time.sleep(0.01)
    go.touch()
    results: dict[str, list[str]] = {}
    for owner, proc in workers.items():
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        results[owner] = [line for line in out.splitlines() if line]
    a, b = results["proc-a"], results["proc-b"]
    assert len(set(a)) == len(a) and len(set(b)) == len(b)  # nobody got a task twice
    assert not set(a) & set(b)  # no task went to both
    assert len(a) + len(b) == N_TASKS  # and none was lost
    assert a and b, "both processes must really have competed"
    claimed = tasks.list_tasks(states=[TaskState.CLAIMED], limit=N_TASKS)
    owner_of = {t.uid: t.lease_owner for t in claimed}
    assert all(owner_of[u] == "proc-a" for u in a)
    assert all(owner_of[u] == "proc-b" for u in b)
