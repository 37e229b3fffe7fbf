"""Small builders shared by the store tests."""

from __future__ import annotations

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
