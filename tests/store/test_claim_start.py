"""claim_and_start: the host's tasks are claimed and started in one transaction,
exactly as a claim followed by a start would leave them."""

from __future__ import annotations

import peewee

from app.core.enums import ExecStatus, TaskState
from app.core.targets import Target
from app.store import executions, tasks
from app.store.models import Execution
from tests.store.helpers import T0, claim_in_lockstep, spec

Slot = tasks.Slot
HOST = Target.host()


def test_host_tasks_are_started_with_an_open_execution(store: peewee.Database) -> None:
    plain = tasks.enqueue(spec("local.execute", target=HOST, payload={"argv": ["true"]}),
                          now=T0 - 3)
    locked = tasks.enqueue(spec("local.execute", target=HOST, dedupe_key="only-one"),
                           now=T0 - 2)
    phone = tasks.enqueue(spec(), now=T0 - 1)
    claimed, started = tasks.claim_and_start(
        "engine-1", [Slot("S1"), Slot(None, host=True, capacity=5)], lease_s=30, now=T0)

    ((task, execution),) = started
    assert task.uid == plain.uid and task.state is TaskState.RUNNING and task.attempts == 1
    assert (task.lease_owner, task.lease_expires_at, task.updated_at) == ("engine-1", T0 + 30, T0)
    assert task.device_serial is None and task.progress_percent is None
    assert tasks.get_task(plain.uid) == task  # what is returned is what is stored
    assert execution.status is ExecStatus.STARTED and execution.attempt == 1
    assert (execution.task_id, execution.task_name, execution.module) == (
        plain.uid, "local.execute", "default")
    assert execution.kwargs == {"argv": ["true"]} and execution.metadata == {"worker": "engine-1"}
    assert execution.started_at == T0
    assert executions.executions_for_task(plain.uid) == [execution]

    # A task with a dedupe key waits for its lock: only claimed. Phones are only claimed.
    assert [t.uid for t in claimed["host"]] == [locked.uid]
    assert [t.uid for t in claimed["S1"]] == [phone.uid]
    assert all(t.state is TaskState.CLAIMED for batch in claimed.values() for t in batch)
    assert Execution.select().count() == 1


def test_a_started_task_runs_on_through_complete(store: peewee.Database) -> None:
    tasks.enqueue(spec("local.execute", target=HOST, uid="h1"), now=T0 - 1)
    _, ((task, execution),) = tasks.claim_and_start(
        "engine-1", [Slot(None, host=True)], lease_s=30, now=T0)
    done = tasks.complete("h1", "engine-1", execution.id, {"ok": True}, now=T0 + 1)
    assert done.state is TaskState.SUCCEEDED and done.result == {"ok": True}
    (row,) = executions.executions_for_task("h1")
    assert row.status is ExecStatus.SUCCESS and row.finished_at == T0 + 1


def test_an_interrupted_task_is_numbered_after_its_last_execution(
        store: peewee.Database) -> None:
    tasks.enqueue(spec("local.execute", target=HOST, uid="h1"), now=T0 - 1)
    _, ((_, first),) = tasks.claim_and_start("engine-1", [Slot(None, host=True)],
                                             lease_s=30, now=T0)
    back = tasks.interrupt("h1", "engine-1", first.id, error="shut down", reason="shutdown",
                           now=T0 + 1)
    assert back.state is TaskState.PENDING and back.attempts == 0  # the attempt is refunded
    _, ((task, second),) = tasks.claim_and_start("engine-2", [Slot(None, host=True)],
                                                 lease_s=30, now=T0 + 2)
    assert task.attempts == 1 and second.attempt == 2
    assert [e.status for e in executions.executions_for_task("h1")] == [
        ExecStatus.FAILURE, ExecStatus.STARTED]


def test_nothing_to_claim_gives_nothing(store: peewee.Database) -> None:
    tasks.enqueue(spec(), now=T0 - 1)  # a phone task; no phone is free
    assert tasks.claim_and_start("engine-1", [Slot(None, host=True)], lease_s=30,
                                 now=T0) == ({}, [])


def test_two_engines_never_start_the_same_task(store: peewee.Database) -> None:
    """Two engines on two connections (two workstations on PostgreSQL)."""
    tasks.enqueue_many([spec("local.execute", target=HOST, uid=f"h{i:04d}")
                        for i in range(600)], now=T0 - 1)

    def take(owner: str) -> list[str]:
        _, started = tasks.claim_and_start(owner, [Slot(None, host=True, capacity=7)],
                                           lease_s=30, now=T0)
        return [task.uid for task, _ in started]

    seen = claim_in_lockstep(store, take)
    one, two = set(seen["one"]), set(seen["two"])
    assert not one & two and len(one | two) == 600
    assert len(seen["one"]) + len(seen["two"]) == 600
    assert Execution.select().count() == 600  # one attempt each, never two
