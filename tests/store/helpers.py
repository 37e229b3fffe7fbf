"""Small builders shared by the store tests."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import peewee

from app.core.enums import Priority
from app.core.targets import Target
from app.core.taskspec import TaskSpec
from app.store.models import Task
from app.store.rows import dicts

T0 = 1_750_000_000.0  # a fixed "now" so tests never depend on the clock


def spec(kind: str = "adb.shell", *, target: Target | None = None,
         priority: Priority = Priority.NORMAL, **fields: Any) -> TaskSpec:
    return TaskSpec(kind=kind, target=target or Target.any(), priority=priority, **fields)


def snapshot() -> list[dict[str, Any]]:
    """Every task row, to prove that a refused call changed nothing."""
    return dicts(Task.select().order_by(Task.id))


def is_pg(db: peewee.Database) -> bool:
    return isinstance(db, peewee.PostgresqlDatabase)


def claim_in_lockstep(db: peewee.Database, take: Callable[[str], list[str]]
                      ) -> dict[str, list[str]]:
    """Two engines ("one", "two") on two connections call ``take(owner)`` in lockstep,
    so that they really contend, until it returns nothing; returns what each took.
    (Two workstations on PostgreSQL; on SQLite the writer lock serialises them.)"""
    seen: dict[str, list[str]] = {"one": [], "two": []}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def engine(owner: str) -> None:
        try:
            while True:
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.wait(10)
                took = take(owner)
                if not took:
                    barrier.abort()  # the other one goes on alone
                    return
                seen[owner].extend(took)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            db.close()  # this thread's connection

    threads = [threading.Thread(target=engine, args=(name,)) for name in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return seen
