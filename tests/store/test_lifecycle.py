"""A task's life under its lease: every transition, and every refused one."""

from __future__ import annotations

import peewee
import pytest

from app.core.enums import ExecStatus, TaskState
from app.core.errors import ConflictError, NotFoundError, TransitionError, ValidationError
from app.core.records import ExecutionRecord, TaskRecord
from app.core.targets import Target
from app.store import executions, tasks
from tests.store.helpers import T0, snapshot, spec

Slot = tasks.Slot


def _claimed(uid: str = "t", owner: str = "w", *, now: float = T0, lease_s: float = 30,
             **fields: object) -> TaskRecord:
    tasks.enqueue(spec(uid=uid, **fields), now=now - 1)  # type: ignore[arg-type]
    got = tasks.claim(owner, [Slot("S1")], lease_s=lease_s, now=now)
    return got["S1"][0]


def _running(uid: str = "t", owner: str = "w", *, now: float = T0,
             **fields: object) -> tuple[TaskRecord, ExecutionRecord]:
    _claimed(uid, owner, now=now, **fields)
    return tasks.start(uid, owner, now=now)


def test_start_counts_the_attempt_and_opens_the_execution(store: peewee.Database) -> None:
    tasks.enqueue(spec(uid="t", payload={"cmd": "ls"}, queue="lab", timeout_s=42,
                       created_by="ana"), now=T0 - 1)
    tasks.claim("w", [Slot("S1")], lease_s=30, now=T0)
    task, execution = tasks.start("t", "w", now=T0 + 1)
    assert task.state is TaskState.RUNNING and task.attempts == 1
    assert task == tasks.get_task("t")
    assert execution == executions.get_execution(execution.id)
    assert (execution.task_id, execution.task_name, execution.module) == ("t", "adb.shell", "lab")
    assert (execution.status, execution.attempt, execution.kwargs) == (
        ExecStatus.STARTED, 1, {"cmd": "ls"})
    assert (execution.created_by, execution.device_serial, execution.timeout_s) == (
        "ana", "S1", 42.0)
    assert execution.started_at == T0 + 1 and execution.finished_at is None


def test_start_is_refused_unless_claimed_by_the_caller_with_a_live_lease(
        store: peewee.Database) -> None:
    tasks.enqueue(spec(uid="pending"))
    _claimed("mine", "w", lease_s=30)
    before = snapshot()
    with pytest.raises(ConflictError):
        tasks.start("pending", "w", now=T0)
    with pytest.raises(ConflictError):
        tasks.start("mine", "someone-else", now=T0)
    with pytest.raises(ConflictError, match="expired"):
        tasks.start("mine", "w", now=T0 + 31)
    with pytest.raises(NotFoundError):
        tasks.start("nope", "w", now=T0)
    assert snapshot() == before
    assert executions.executions_for_task("mine") == []


def test_complete_records_success_and_merges_metadata(store: peewee.Database) -> None:
    _, execution = _running()
    executions.merge_metadata(execution.id, {"progress_percent": 50})
    done = tasks.complete("t", "w", execution.id, {"exit_code": 0},
                          metadata={"progress_percent": 100, "artifact": "a.png"}, now=T0 + 5)
    assert done.state is TaskState.SUCCEEDED and done.result == {"exit_code": 0}
    assert done.finished_at == T0 + 5 and done.lease_owner is None
    assert done == tasks.get_task("t")
    row = executions.get_execution(execution.id)
    assert (row.status, row.result, row.finished_at) == (ExecStatus.SUCCESS, {"exit_code": 0},
                                                         T0 + 5)
    assert row.metadata == {"worker": "w", "progress_percent": 100, "artifact": "a.png"}


def test_complete_is_refused_for_a_wrong_owner_execution_or_result(
        store: peewee.Database) -> None:
    _, execution = _running("a")
    _, other = _running("b")
    before = snapshot()
    with pytest.raises(ConflictError):
        tasks.complete("a", "intruder", execution.id, 1)
    with pytest.raises(ConflictError, match="belongs to task b"):
        tasks.complete("a", "w", other.id, 1)
    with pytest.raises(NotFoundError):
        tasks.complete("a", "w", 999_999, 1)
    with pytest.raises(ValidationError):
        tasks.complete("a", "w", execution.id, {"x": object()})
    assert snapshot() == before
    assert executions.get_execution(execution.id).status is ExecStatus.STARTED


def test_a_failure_with_attempts_left_retries_after_the_backoff(store: peewee.Database) -> None:
    _, execution = _running(max_attempts=3)
    back = tasks.fail("t", "w", execution.id, error="boom", traceback="Traceback...",
                      metadata={"exit_code": 2}, now=T0 + 2)
    assert back.state is TaskState.PENDING and back.attempts == 1
    assert back.last_error == "boom" and back.lease_owner is None and back.device_serial is None
    assert 4.0 <= back.not_before - (T0 + 2) <= 6.0  # 5 s ± 20 % jitter for the first retry
    row = executions.get_execution(execution.id)
    assert (row.status, row.error, row.traceback) == (ExecStatus.FAILURE, "boom", "Traceback...")
    assert row.metadata == {"worker": "w", "exit_code": 2, "reason": "error"}
    # Not claimable before not_before; claimable after, as attempt 2 with a longer backoff.
    assert tasks.claim("w", [Slot("S1")], lease_s=30, now=T0 + 3) == {}
    tasks.claim("w", [Slot("S1")], lease_s=30, now=back.not_before)
    _, second = tasks.start("t", "w", now=back.not_before)
    assert second.attempt == 2
    again = tasks.fail("t", "w", second.id, error="boom", now=back.not_before)
    assert 8.0 <= again.not_before - back.not_before <= 12.0


def test_an_explicit_retry_delay_wins(store: peewee.Database) -> None:
    _, execution = _running()
    back = tasks.fail("t", "w", execution.id, error="busy", retry_delay=90, now=T0)
    assert back.not_before == T0 + 90


def test_the_last_failed_attempt_makes_the_task_dead(store: peewee.Database) -> None:
    _, execution = _running(max_attempts=1)
    dead = tasks.fail("t", "w", execution.id, error="boom", reason="device_lost", now=T0 + 1)
    assert dead.state is TaskState.DEAD and dead.finished_at == T0 + 1
    assert executions.get_execution(execution.id).metadata["reason"] == "device_lost"


def test_a_permanent_failure_does_not_retry(store: peewee.Database) -> None:
    _, execution = _running(max_attempts=5)
    failed = tasks.fail("t", "w", execution.id, error="bad apk", retryable=False, now=T0)
    assert failed.state is TaskState.FAILED and failed.attempts == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"error": ""}, {"error": "x", "reason": ""}, {"error": "x", "retry_delay": -1},
     {"error": "x", "metadata": {"k": object()}}],
)
def test_bad_failure_input_changes_nothing(store: peewee.Database, kwargs: dict) -> None:
    _, execution = _running()
    before = snapshot()
    with pytest.raises(ValidationError):
        tasks.fail("t", "w", execution.id, **kwargs)
    assert snapshot() == before
    assert executions.get_execution(execution.id).status is ExecStatus.STARTED


def test_interrupt_requeues_at_once_even_on_the_last_attempt(store: peewee.Database) -> None:
    _, execution = _running(max_attempts=1)
    back = tasks.interrupt("t", "w", execution.id, error="shut down", now=T0 + 1)
    assert back.state is TaskState.PENDING and back.not_before is None
    row = executions.get_execution(execution.id)
    assert row.status is ExecStatus.FAILURE and row.metadata["reason"] == "interrupted"
    tasks.claim("w", [Slot("S1")], lease_s=30, now=T0 + 1)
    _, second = tasks.start("t", "w", now=T0 + 1)
    assert second.attempt == 2  # a new execution row, never a reused one
    assert tasks.fail("t", "w", second.id, error="boom", now=T0 + 2).state is TaskState.DEAD


def test_release_gives_a_claimed_task_back_without_an_attempt(store: peewee.Database) -> None:
    _claimed(not_before=T0 - 10)
    back = tasks.release("t", "w", now=T0 + 1)
    assert back.state is TaskState.PENDING and back.attempts == 0
    assert back.lease_owner is None and back.device_serial is None and back.not_before == T0 - 10
    assert executions.executions_for_task("t") == []
    with pytest.raises(ConflictError):
        tasks.release("t", "w")  # no longer claimed


def test_cancel_of_waiting_tasks_is_immediate(store: peewee.Database) -> None:
    tasks.enqueue(spec(uid="p"))
    _claimed("c")
    for uid in ("p", "c"):
        cancelled = tasks.request_cancel(uid, actor="ana", now=T0 + 3)
        assert cancelled.state is TaskState.CANCELLED and cancelled.finished_at == T0 + 3
        assert cancelled.lease_owner is None
    with pytest.raises(ConflictError):
        tasks.start("c", "w", now=T0 + 4)  # the engine that claimed it finds out
    with pytest.raises(ConflictError, match="already finished"):
        tasks.request_cancel("p")
    with pytest.raises(NotFoundError):
        tasks.request_cancel("nope")


def test_cancel_of_a_running_task_asks_the_engine_then_revoke_records_it(
        store: peewee.Database) -> None:
    _, execution = _running()
    flagged = tasks.request_cancel("t", now=T0 + 1)
    assert flagged.state is TaskState.RUNNING and flagged.cancel_requested
    assert tasks.request_cancel("t").cancel_requested  # asking twice is harmless
    revoked = tasks.revoke("t", "w", execution.id, reason="cancelled by operator", now=T0 + 2)
    assert revoked.state is TaskState.CANCELLED and revoked.finished_at == T0 + 2
    row = executions.get_execution(execution.id)
    assert row.status is ExecStatus.REVOKED and row.metadata["reason"] == "cancelled by operator"
    with pytest.raises(ConflictError):
        tasks.revoke("t", "w", execution.id)


def test_a_cancelled_task_that_fails_is_not_retried(store: peewee.Database) -> None:
    _, execution = _running(max_attempts=5)
    tasks.request_cancel("t")
    assert tasks.fail("t", "w", execution.id, error="killed").state is TaskState.CANCELLED


def test_renew_leases_reports_the_leases_lost(store: peewee.Database) -> None:
    _claimed("a", "w")
    _running("b", "w")
    _claimed("c", "other")
    tasks.enqueue(spec(uid="d"))
    lost = tasks.renew_leases("w", ["a", "b", "c", "d", "missing"], lease_s=60, now=T0 + 10)
    assert lost == ["c", "d", "missing"]
    assert tasks.get_task("a").lease_expires_at == T0 + 70
    assert tasks.get_task("b").lease_expires_at == T0 + 70
    assert tasks.get_task("c").lease_expires_at == T0 + 30
    with pytest.raises(ValidationError):
        tasks.renew_leases("w", ["a"], lease_s=-1)


def test_reap_returns_expired_claims_and_fails_lost_attempts(store: peewee.Database) -> None:
    _claimed("claimed", lease_s=10)
    _, execution = _running("running", max_attempts=2)
    _, last = _running("last", max_attempts=1)
    _claimed("fresh", lease_s=1000)
    assert tasks.reap_expired(now=T0 + 5) == []
    reaped = {t.uid: t for t in tasks.reap_expired(now=T0 + 31)}
    assert set(reaped) == {"claimed", "running", "last"}
    assert reaped["claimed"].state is TaskState.PENDING and reaped["claimed"].attempts == 0
    assert reaped["running"].state is TaskState.PENDING and reaped["running"].attempts == 1
    assert reaped["running"].not_before > T0 + 31 and reaped["running"].lease_owner is None
    assert reaped["last"].state is TaskState.DEAD
    assert reaped["running"].last_error == "lease expired (worker lost)"
    for exec_id in (execution.id, last.id):
        row = executions.get_execution(exec_id)
        assert row.status is ExecStatus.FAILURE and row.finished_at == T0 + 31
        assert row.error == "lease expired (worker lost)"
        assert row.metadata["reason"] == "lease_expired"
    assert executions.executions_for_task("claimed") == []
    assert tasks.get_task("fresh").state is TaskState.CLAIMED


def test_reap_by_owner_prefix_recovers_a_crashed_engine_at_once(store: peewee.Database) -> None:
    _running("dead-engine-task", "engine-host-111", now=T0)
    _claimed("live-task", "engine-host-222", now=T0)
    _claimed("other-host", "engine-elsewhere-1", now=T0)
    reaped = tasks.reap_expired(now=T0 + 1, owner_prefix="engine-host-",
                                live_owner="engine-host-222")
    assert [t.uid for t in reaped] == ["dead-engine-task"]
    assert tasks.get_task("live-task").state is TaskState.CLAIMED
    assert tasks.get_task("other-host").state is TaskState.CLAIMED


def test_set_progress_only_for_running_tasks(store: peewee.Database) -> None:
    _running()
    tasks.set_progress("t", 40, "copying" + "x" * 500)
    task = tasks.get_task("t")
    assert task.progress_percent == 40 and len(task.progress_message or "") == 256
    tasks.set_progress("t", None, None)
    assert tasks.get_task("t").progress_percent is None
    for bad in (-1, 101, True, 5.5):
        with pytest.raises(ValidationError):
            tasks.set_progress("t", bad, None)  # type: ignore[arg-type]
    tasks.enqueue(spec(uid="waiting"))
    tasks.set_progress("waiting", 10, "ignored")
    assert tasks.get_task("waiting").progress_percent is None
    with pytest.raises(NotFoundError):
        tasks.set_progress("nope", 10, None)


def test_running_for_owner_lists_its_claimed_and_running_tasks(store: peewee.Database) -> None:
    _claimed("a", "w")
    _running("b", "w")
    _claimed("c", "other")
    assert [t.uid for t in tasks.running_for_owner("w")] == ["a", "b"]


def test_targeted_retry_goes_back_to_its_device(store: peewee.Database) -> None:
    tasks.enqueue(spec(uid="t", target=Target.device("S7")), now=T0 - 1)
    tasks.claim("w", [Slot("S7")], lease_s=30, now=T0)
    _, execution = tasks.start("t", "w", now=T0)
    tasks.fail("t", "w", execution.id, error="boom", retry_delay=0, now=T0)
    assert tasks.claim("w", [Slot("S1", capacity=5)], lease_s=30, now=T0) == {}
    assert [t.uid for t in tasks.claim("w", [Slot("S7")], lease_s=30, now=T0)["S7"]] == ["t"]


def test_a_terminal_execution_cannot_be_completed(store: peewee.Database) -> None:
    """The timeout sweep or an operator closed the row: completing it is refused."""
    _, execution = _running()
    executions.update_execution(execution.id, status=ExecStatus.FAILURE, error="swept")
    with pytest.raises(TransitionError):
        tasks.complete("t", "w", execution.id, {"late": True})
    assert tasks.get_task("t").state is TaskState.RUNNING
