"""Execution rows: transitions, timestamps, metadata merge, retention, timeout sweep."""

from __future__ import annotations

import logging
from collections.abc import Callable

import peewee
import pytest

from app.core.enums import EXEC_TRANSITIONS, ExecStatus
from app.core.errors import ConflictError, NotFoundError, TransitionError, ValidationError
from app.store import executions, tasks
from app.store.models import Execution
from tests.store.helpers import T0, spec

DAY = 86400.0


def _new(task_id: str = "job-1", status: ExecStatus = ExecStatus.STARTED, *,
         now: float = T0, **fields: object):
    return executions.create_execution(task_id=task_id, task_name="system.cleanup",
                                       module="system", status=status, now=now,
                                       **fields)  # type: ignore[arg-type]


def _count_statements(verb: str) -> Callable[[], int]:
    """Count the SQL statements starting with ``verb`` that peewee runs from now on."""
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if isinstance(record.msg, tuple) and str(record.msg[0]).startswith(verb):
                seen.append(record.msg[0])

    logger = logging.getLogger("peewee")
    handler = Collect(level=logging.DEBUG)
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)

    def stop() -> int:
        logger.removeHandler(handler)
        logger.setLevel(previous)
        return len(seen)

    return stop


def test_create_execution_stores_every_field(store: peewee.Database) -> None:
    row = _new(created_by="system", kwargs={"days": 30}, args=[1, "a"],
               metadata={"progress_step": "scan"}, device_serial="S1", attempt=2,
               timeout_s=60)
    assert row == executions.get_execution(row.id)
    assert (row.task_id, row.task_name, row.module, row.status) == (
        "job-1", "system.cleanup", "system", ExecStatus.STARTED)
    assert (row.kwargs, row.args, row.metadata) == ({"days": 30}, [1, "a"],
                                                    {"progress_step": "scan"})
    assert (row.device_serial, row.attempt, row.timeout_s, row.created_by) == ("S1", 2, 60.0,
                                                                               "system")
    assert (row.created_at, row.started_at, row.finished_at) == (T0, T0, None)
    pending = _new("job-2", ExecStatus.PENDING)
    assert pending.started_at is None
    done = _new("job-3", ExecStatus.SUCCESS)
    assert done.finished_at == T0


def test_the_same_attempt_cannot_be_recorded_twice(store: peewee.Database) -> None:
    _new()
    with pytest.raises(ConflictError):
        _new()
    assert Execution.select().count() == 1


@pytest.mark.parametrize(
    "bad",
    [{"task_id": ""}, {"task_id": "x" * 65}, {"status": "DONE"}, {"attempt": 0},
     {"kwargs": []}, {"metadata": {"k": object()}}, {"args": [object()]}, {"timeout_s": -1}],
)
def test_bad_execution_input_changes_nothing(store: peewee.Database, bad: dict) -> None:
    fields = {"task_id": "job", "task_name": "n", "module": "m", **bad}
    with pytest.raises(ValidationError):
        executions.create_execution(**fields)
    assert Execution.select().count() == 0


def test_started_and_finished_are_stamped_once(store: peewee.Database) -> None:
    row = _new(status=ExecStatus.PENDING)
    row = executions.update_execution(row.id, status=ExecStatus.STARTED, now=T0 + 1)
    row = executions.update_execution(row.id, status=ExecStatus.RETRY, now=T0 + 2)
    row = executions.update_execution(row.id, status=ExecStatus.STARTED, now=T0 + 3)
    assert row.started_at == T0 + 1  # the first STARTED only
    row = executions.update_execution(row.id, status=ExecStatus.SUCCESS, result=[1, 2],
                                      now=T0 + 4)
    assert (row.finished_at, row.result, row.duration) == (T0 + 4, [1, 2], 3.0)
    row = executions.update_execution(row.id, metadata={"note": "later"}, now=T0 + 9)
    assert row.finished_at == T0 + 4 and row.metadata == {"note": "later"}


@pytest.mark.parametrize("terminal", [ExecStatus.SUCCESS, ExecStatus.FAILURE,
                                      ExecStatus.REVOKED])
def test_a_terminal_row_never_changes_status_again(store: peewee.Database,
                                                   terminal: ExecStatus) -> None:
    row = executions.update_execution(_new().id, status=terminal, now=T0 + 1)
    for target in ExecStatus:
        with pytest.raises(TransitionError):
            executions.update_execution(row.id, status=target, result="x", now=T0 + 2)
    after = executions.get_execution(row.id)
    assert after.status is terminal and after.result is None and after.finished_at == T0 + 1


def test_transitions_follow_the_table(store: peewee.Database) -> None:
    for source, allowed in EXEC_TRANSITIONS.items():
        for target in ExecStatus:
            row = _new(f"{source}-{target}", ExecStatus.PENDING)
            if source is not ExecStatus.PENDING:
                Execution.update(status=source.value).where(Execution.id == row.id).execute()
            if target in allowed:
                assert executions.update_execution(row.id, status=target).status is target
            else:
                with pytest.raises(TransitionError):
                    executions.update_execution(row.id, status=target)


def test_metadata_is_merged_never_replaced(store: peewee.Database) -> None:
    row = _new(metadata={"a": 1, "nested": {"x": 1}})
    executions.merge_metadata(row.id, {"b": 2})
    executions.merge_metadata(row.id, {"a": 3, "nested": {"y": 2}})
    executions.merge_metadata(row.id, {})
    updated = executions.update_execution(row.id, status=ExecStatus.FAILURE, error="boom",
                                          traceback="tb", metadata={"c": 4})
    assert updated.metadata == {"a": 3, "nested": {"y": 2}, "b": 2, "c": 4}  # shallow merge
    assert (updated.error, updated.traceback) == ("boom", "tb")
    with pytest.raises(ValidationError):
        executions.merge_metadata(row.id, {"bad": object()})
    with pytest.raises(ValidationError):
        executions.merge_metadata(row.id, ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        executions.merge_metadata(999_999, {"a": 1})
    assert executions.get_execution(row.id).metadata == updated.metadata


def test_lookups_by_task(store: peewee.Database) -> None:
    for attempt in (1, 2, 3):
        _new("job", attempt=attempt, now=T0 + attempt)
    assert [r.attempt for r in executions.executions_for_task("job")] == [1, 2, 3]
    assert executions.latest_execution_for_task("job").attempt == 3
    assert executions.executions_for_task("other") == []
    with pytest.raises(NotFoundError):
        executions.latest_execution_for_task("other")
    with pytest.raises(NotFoundError):
        executions.get_execution(424242)


def test_retention_deletes_old_completed_rows_in_batches(store: peewee.Database) -> None:
    for i in range(23):
        row = _new(f"old-{i}", now=T0 - 40 * DAY)
        executions.update_execution(row.id, status=ExecStatus.SUCCESS)
    _new("old-but-running", now=T0 - 40 * DAY)
    recent = _new("recent", now=T0 - 10 * DAY)
    executions.update_execution(recent.id, status=ExecStatus.FAILURE)
    assert executions.purge_old_executions(retention_days=0, now=T0) == 0
    assert executions.purge_old_executions(retention_days=-5, now=T0) == 0
    deletes = _count_statements("DELETE")
    assert executions.purge_old_executions(retention_days=30, batch_size=5, now=T0) == 23
    assert deletes() == 5  # 5 + 5 + 5 + 5 + 3: short transactions, not one big delete
    left = sorted(r.task_id for r in Execution.select(Execution.task_id))
    assert left == ["old-but-running", "recent"]
    assert executions.purge_old_executions(retention_days=30, only_completed=False,
                                           now=T0) == 1
    with pytest.raises(ValidationError):
        executions.purge_old_executions(batch_size=0)


def test_timeout_sweep_fails_stale_started_rows(store: peewee.Database) -> None:
    stale = _new("stale", now=T0 - 1000)                   # default timeout 600 + 60 grace
    own = _new("own-timeout", now=T0 - 200, timeout_s=100)  # 100 + 60 < 200
    young = _new("young", now=T0 - 100)
    queued = _new("queued", ExecStatus.PENDING, now=T0 - 5000)
    assert executions.sweep_timeouts(now=T0, default_timeout_s=600, grace_s=60) == 2
    row = executions.get_execution(stale.id)
    assert row.status is ExecStatus.FAILURE and row.finished_at == T0
    assert row.error.startswith("Task timeout (exceeded 10 minutes, started before ")
    assert row.metadata == {"reason": "timeout"}
    assert "exceeded 1.66667 minutes" in executions.get_execution(own.id).error
    assert executions.get_execution(young.id).status is ExecStatus.STARTED
    assert executions.get_execution(queued.id).status is ExecStatus.PENDING
    assert executions.sweep_timeouts(now=T0, default_timeout_s=600, grace_s=60) == 0


def test_timeout_sweep_leaves_tasks_the_engine_still_holds(store: peewee.Database) -> None:
    tasks.enqueue(spec(uid="held", timeout_s=10), now=T0 - 1000)
    tasks.claim("w", [tasks.Slot("S1")], lease_s=5000, now=T0 - 1000)
    _, live = tasks.start("held", "w", now=T0 - 1000)
    tasks.enqueue(spec(uid="orphan", timeout_s=10), now=T0 - 1000)
    tasks.claim("w", [tasks.Slot("S2")], lease_s=30, now=T0 - 1000)
    _, orphan = tasks.start("orphan", "w", now=T0 - 1000)
    assert executions.sweep_timeouts(now=T0) == 1
    assert executions.get_execution(live.id).status is ExecStatus.STARTED
    assert executions.get_execution(orphan.id).status is ExecStatus.FAILURE
    # The reaper later finds the orphan's task; the execution is already closed.
    reaped = tasks.reap_expired(now=T0)
    assert [t.uid for t in reaped] == ["orphan"]
    assert executions.get_execution(orphan.id).metadata["reason"] == "timeout"


def test_timeout_sweep_refuses_bad_settings(store: peewee.Database) -> None:
    with pytest.raises(ValidationError):
        executions.sweep_timeouts(default_timeout_s=0)
    with pytest.raises(ValidationError):
        executions.sweep_timeouts(grace_s=-1)
