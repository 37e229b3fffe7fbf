"""Enqueueing and reading tasks: what callers (GUI, CLI, API) rely on."""

from __future__ import annotations

import peewee
import pytest

from app.core.enums import Priority, TargetKind, TaskState
from app.core.errors import ConflictError, NotFoundError, ValidationError
from app.core.targets import Target
from app.core.taskspec import TaskSpec
from app.store import queues, tasks
from app.store.models import Queue, Task
from tests.store.helpers import T0, snapshot, spec


def test_enqueue_stores_a_pending_task_with_every_field(store: peewee.Database) -> None:
    record = tasks.enqueue(
        spec(payload={"command": "ls"}, queue="lab", priority=Priority.HIGH,
             target=Target.selector(["usb", "lab"], "Pixel 7"), not_before=T0 + 60,
             max_attempts=5, timeout_s=30, dedupe_key="cap:serial=A", source="cli",
             created_by="ana", uid="my-task-1"),
        now=T0,
    )
    assert record == tasks.get_task("my-task-1")
    assert record.state is TaskState.PENDING and record.attempts == 0
    assert record.payload == {"command": "ls"} and record.queue == "lab"
    assert record.priority is Priority.HIGH and record.max_attempts == 5
    assert record.target == Target.selector(["lab", "usb"], "Pixel 7")
    assert (record.not_before, record.created_at, record.updated_at) == (T0 + 60, T0, T0)
    assert (record.dedupe_key, record.source, record.created_by) == ("cap:serial=A", "cli", "ana")
    assert record.lease_owner is None and record.cancel_requested is False
    assert queues.get_queue("lab").pending == 1  # the queue now exists


def test_enqueue_generates_a_uid_when_none_is_given(store: peewee.Database) -> None:
    a, b = tasks.enqueue(spec()), tasks.enqueue(spec())
    assert len(a.uid) == 32 and a.uid != b.uid
    assert b.id > a.id


def test_targets_round_trip_through_storage(store: peewee.Database) -> None:
    targets = [Target.any(), Target.device("SER-1"), Target.selector(["a"]),
               Target.agent("12345678-1234-5678-1234-567812345678"), Target.host()]
    stored = [tasks.enqueue(spec(target=t)).target for t in targets]
    assert stored == targets
    assert {t.kind for t in stored} == set(TargetKind)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (TaskSpec(kind="NotAKind"), "kind"),
        (TaskSpec(kind="adb.shell", queue="bad queue"), "queue"),
        (TaskSpec(kind="adb.shell", max_attempts=0), "max_attempts"),
        (TaskSpec(kind="adb.shell", timeout_s=0), "timeout_s"),
        (TaskSpec(kind="adb.shell", source="nowhere"), "source"),
        (TaskSpec(kind="adb.shell", payload={"x": object()}), "payload"),
        (TaskSpec(kind="adb.shell", uid="has space"), "id"),
        (TaskSpec(kind="adb.shell", not_before=float("nan")), "not_before"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(store: peewee.Database, bad: TaskSpec,
                                                  field: str) -> None:
    tasks.enqueue(spec(uid="keep"))
    before = snapshot()
    with pytest.raises(ValidationError) as info:
        tasks.enqueue(bad)
    assert info.value.field == field
    assert snapshot() == before


def test_a_duplicate_uid_is_a_conflict(store: peewee.Database) -> None:
    tasks.enqueue(spec(uid="dup"))
    before = snapshot()
    with pytest.raises(ConflictError):
        tasks.enqueue(spec(uid="dup"))
    assert snapshot() == before


def test_enqueue_many_is_all_or_nothing(store: peewee.Database) -> None:
    tasks.enqueue(spec(uid="exists"))
    before = snapshot()
    good = [spec(uid=f"g{i}") for i in range(5)]
    with pytest.raises(ValidationError, match="task 4"):
        tasks.enqueue_many(good[:3] + [TaskSpec(kind="bad")] + good[3:])
    with pytest.raises(ConflictError):
        tasks.enqueue_many(good + [spec(uid="exists")])
    with pytest.raises(ConflictError):
        tasks.enqueue_many(good + [spec(uid="g0")])
    assert snapshot() == before
    assert Queue.select().count() == 1


def test_enqueue_many_returns_records_in_input_order(store: peewee.Database) -> None:
    specs = [spec(uid=f"t{i:04d}", queue=f"q{i % 3}", payload={"i": i}) for i in range(1200)]
    records = tasks.enqueue_many(list(reversed(specs)), now=T0)
    assert [r.uid for r in records] == [s.uid for s in reversed(specs)]
    assert [r.payload["i"] for r in records[:3]] == [1199, 1198, 1197]
    # The records are built without reading the rows back: they must be what is stored.
    assert records[::97] == [tasks.get_task(r.uid) for r in records[::97]]
    assert Task.select().count() == 1200
    assert sorted(q.name for q in queues.list_queues()) == ["q0", "q1", "q2"]
    assert tasks.enqueue_many([]) == []


def test_get_task_of_an_unknown_uid_is_not_found(store: peewee.Database) -> None:
    with pytest.raises(NotFoundError):
        tasks.get_task("nope")


def test_list_tasks_filters_and_pages_by_id(store: peewee.Database) -> None:
    for i in range(7):
        tasks.enqueue(spec("adb.shell" if i % 2 else "adb.install", queue="a" if i < 4 else "b",
                           uid=f"t{i}"))
    tasks.request_cancel("t6")
    assert [t.uid for t in tasks.list_tasks(queue="b")] == ["t4", "t5", "t6"]
    assert [t.uid for t in tasks.list_tasks(kind="adb.shell")] == ["t1", "t3", "t5"]
    assert [t.uid for t in tasks.list_tasks(states=[TaskState.CANCELLED])] == ["t6"]
    assert tasks.list_tasks(states=[]) == []
    first = tasks.list_tasks(limit=3)
    rest = tasks.list_tasks(limit=10, after_id=first[-1].id)
    assert [t.uid for t in first + rest] == [f"t{i}" for i in range(7)]
    with pytest.raises(ValidationError):
        tasks.list_tasks(limit=0)
    with pytest.raises(ValidationError):
        tasks.list_tasks(states=["sleeping"])  # type: ignore[list-item]


def test_count_by_state_lists_every_state(store: peewee.Database) -> None:
    for i in range(3):
        tasks.enqueue(spec(uid=f"a{i}", queue="a"))
    tasks.enqueue(spec(uid="b0", queue="b"))
    tasks.request_cancel("a0")
    counts = tasks.count_by_state()
    assert set(counts) == set(TaskState)
    assert counts[TaskState.PENDING] == 3 and counts[TaskState.CANCELLED] == 1
    assert tasks.count_by_state("b")[TaskState.PENDING] == 1
    assert sum(tasks.count_by_state("nobody").values()) == 0


def test_set_priority_only_while_waiting(store: peewee.Database) -> None:
    task = tasks.enqueue(spec())
    assert tasks.set_priority(task.uid, Priority.CRITICAL).priority is Priority.CRITICAL
    assert tasks.get_task(task.uid).priority is Priority.CRITICAL
    with pytest.raises(ValidationError):
        tasks.set_priority(task.uid, "urgent")  # type: ignore[arg-type]
    tasks.claim("w", [tasks.Slot("S")], lease_s=30)
    assert tasks.set_priority(task.uid, Priority.LOW).priority is Priority.LOW  # claimed: ok
    tasks.start(task.uid, "w")
    with pytest.raises(ConflictError):
        tasks.set_priority(task.uid, Priority.HIGH)
    with pytest.raises(NotFoundError):
        tasks.set_priority("nope", Priority.HIGH)


def test_pending_wakeup_hint_is_the_earliest_future_not_before(store: peewee.Database) -> None:
    assert tasks.pending_wakeup_hint(T0) is None
    tasks.enqueue(spec(not_before=T0 - 5))  # already due: not a future wake-up
    tasks.enqueue(spec(not_before=T0 + 30))
    tasks.enqueue(spec(not_before=T0 + 10, uid="soon"))
    assert tasks.pending_wakeup_hint(T0) == T0 + 10
    tasks.request_cancel("soon")
    assert tasks.pending_wakeup_hint(T0) == T0 + 30


def test_purge_old_tasks_deletes_only_long_finished_ones(store: peewee.Database) -> None:
    for i in range(7):
        tasks.enqueue(spec(uid=f"old{i}"), now=T0)
        tasks.request_cancel(f"old{i}", now=T0)
    tasks.enqueue(spec(uid="recent"), now=T0)
    tasks.request_cancel("recent", now=T0 + 29 * 86400)
    tasks.enqueue(spec(uid="waiting"), now=T0)
    assert tasks.purge_old_tasks(retention_days=0, now=T0 + 31 * 86400) == 0
    assert tasks.purge_old_tasks(retention_days=30, batch_size=3, now=T0 + 31 * 86400) == 7
    assert sorted(t.uid for t in tasks.list_tasks()) == ["recent", "waiting"]
