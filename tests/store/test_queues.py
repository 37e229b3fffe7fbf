"""Queues: pause, concurrency limit, live counts."""

from __future__ import annotations

import peewee
import pytest

from app.core.errors import NotFoundError, ValidationError
from app.store import queues, tasks
from app.store.models import Queue
from tests.store.helpers import T0, spec


def test_ensure_queue_is_idempotent(store: peewee.Database) -> None:
    first = queues.ensure_queue("lab", now=T0)
    again = queues.ensure_queue("lab", now=T0 + 50)
    assert first == again and first.created_at == T0
    assert (first.paused, first.concurrency) == (False, 0)
    assert Queue.select().count() == 1
    with pytest.raises(ValidationError):
        queues.ensure_queue("no spaces")


def test_list_queues_counts_waiting_and_active_tasks(store: peewee.Database) -> None:
    for i in range(3):
        tasks.enqueue(spec(uid=f"a{i}", queue="a"), now=T0 - 5)
    tasks.enqueue(spec(uid="b0", queue="b"), now=T0 - 5)
    tasks.enqueue(spec(uid="a-cancelled", queue="a"))
    tasks.request_cancel("a-cancelled")
    tasks.claim("w", [tasks.Slot("S1", capacity=2)], lease_s=30, now=T0)  # a0 + a1
    tasks.start("a0", "w", now=T0)
    listed = {q.name: q for q in queues.list_queues()}
    assert list(listed) == ["a", "b"]
    assert (listed["a"].pending, listed["a"].claimed, listed["a"].running) == (1, 1, 1)
    assert listed["a"].active == 2
    assert (listed["b"].pending, listed["b"].active) == (1, 0)
    assert listed["a"].to_api()["pending"] == 1


def test_pause_and_concurrency_are_stored(store: peewee.Database) -> None:
    queues.ensure_queue("lab")
    assert queues.set_paused("lab", True).paused
    assert queues.get_queue("lab").paused
    assert not queues.set_paused("lab", False).paused
    assert queues.set_concurrency("lab", 4).concurrency == 4
    assert queues.set_concurrency("lab", 0).concurrency == 0


@pytest.mark.parametrize("bad", [-1, 10_001, 1.5, True, "3"])
def test_bad_concurrency_is_refused_and_changes_nothing(store: peewee.Database,
                                                        bad: object) -> None:
    queues.ensure_queue("lab")
    queues.set_concurrency("lab", 2)
    with pytest.raises(ValidationError):
        queues.set_concurrency("lab", bad)  # type: ignore[arg-type]
    assert queues.get_queue("lab").concurrency == 2


def test_unknown_queues_are_not_found(store: peewee.Database) -> None:
    with pytest.raises(NotFoundError):
        queues.get_queue("nope")
    with pytest.raises(NotFoundError):
        queues.set_paused("nope", True)
    with pytest.raises(NotFoundError):
        queues.set_concurrency("nope", 1)
    with pytest.raises(ValidationError):
        queues.set_paused("nope", "yes")  # type: ignore[arg-type]
    assert Queue.select().count() == 0
