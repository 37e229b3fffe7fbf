"""Named task queues: pause/resume and a concurrency limit, with live counts.

A queue row is created the first time a task is enqueued into it
(``ensure_queue``); operators then pause it (the claim skips its tasks) or cap
how many of its tasks may be claimed or running at once (0 = no cap).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import peewee

from app.core import clock
from app.core.enums import TaskState
from app.core.errors import NotFoundError, ValidationError
from app.core.taskspec import QUEUE_RE
from app.store.dialect import write_transaction
from app.store.models import Queue, Task
from app.store.rows import tuples

MAX_CONCURRENCY = 10_000


@dataclass(frozen=True)
class QueueRecord:
    name: str
    paused: bool
    concurrency: int
    created_at: float
    pending: int = 0
    claimed: int = 0
    running: int = 0

    @property
    def active(self) -> int:
        """Tasks that count against the concurrency limit."""
        return self.claimed + self.running

    def to_api(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "paused": self.paused,
            "concurrency": self.concurrency,
            "pending": self.pending,
            "claimed": self.claimed,
            "running": self.running,
            "created_at": clock.iso(self.created_at),
        }


def check_queue_name(name: str) -> str:
    if not isinstance(name, str) or not QUEUE_RE.match(name):
        raise ValidationError(f"invalid queue name {name!r}", field="queue")
    return name


def ensure_queue(name: str, *, now: float | None = None) -> QueueRecord:
    """Create the queue if it does not exist (idempotent, safe between processes)."""
    check_queue_name(name)
    at = clock.now() if now is None else now
    with write_transaction():
        Queue.insert(name=name, paused=False, concurrency=0, created_at=at).on_conflict_ignore(
        ).execute()
    return get_queue(name)


def get_queue(name: str) -> QueueRecord:
    row = Queue.get_or_none(Queue.name == name)
    if row is None:
        raise NotFoundError(f"no queue named {name!r}")
    counts = _counts([name]).get(name, {})
    return _record(row, counts)


def list_queues() -> list[QueueRecord]:
    """Every queue, by name, with its pending/claimed/running counts."""
    rows = list(Queue.select().order_by(Queue.name))
    counts = _counts(None)
    return [_record(row, counts.get(row.name, {})) for row in rows]


def set_paused(name: str, paused: bool) -> QueueRecord:
    if not isinstance(paused, bool):
        raise ValidationError("paused must be true or false", field="paused")
    return _update(name, paused=paused)


def set_concurrency(name: str, concurrency: int) -> QueueRecord:
    """Cap claimed+running tasks of the queue; 0 removes the cap."""
    if (
        isinstance(concurrency, bool)
        or not isinstance(concurrency, int)
        or not 0 <= concurrency <= MAX_CONCURRENCY
    ):
        raise ValidationError(
            f"concurrency must be an integer from 0 (no limit) to {MAX_CONCURRENCY}",
            field="concurrency",
        )
    return _update(name, concurrency=concurrency)


# -- internals -------------------------------------------------------------------------
def _update(name: str, **fields: Any) -> QueueRecord:
    check_queue_name(name)
    with write_transaction():
        changed = Queue.update(**fields).where(Queue.name == name).execute()
        if not changed:
            raise NotFoundError(f"no queue named {name!r}")
    return get_queue(name)


def _counts(names: list[str] | None) -> dict[str, dict[str, int]]:
    query = (
        Task.select(Task.queue, Task.state, peewee.fn.COUNT(Task.id).alias("n"))
        .where(Task.state.in_([TaskState.PENDING, TaskState.CLAIMED, TaskState.RUNNING]))
        .group_by(Task.queue, Task.state)
    )
    if names is not None:
        query = query.where(Task.queue.in_(names))
    out: dict[str, dict[str, int]] = {}
    for queue, state, n in tuples(query):
        out.setdefault(queue, {})[state] = int(n)
    return out


def _record(row: Queue, counts: dict[str, int]) -> QueueRecord:
    return QueueRecord(
        name=row.name,
        paused=bool(row.paused),
        concurrency=int(row.concurrency),
        created_at=float(row.created_at),
        pending=counts.get(TaskState.PENDING, 0),
        claimed=counts.get(TaskState.CLAIMED, 0),
        running=counts.get(TaskState.RUNNING, 0),
    )
