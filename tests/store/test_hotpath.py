"""The batch hot path (start_many / complete_many / fail_many) keeps every rule of the
single-item lifecycle calls, returns per-item errors in place, and never lets a bad
item change anything or spoil the good ones. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from typing import Any

import peewee
import pytest

from app.core.enums import ExecStatus, TaskState
from app.core.errors import (
    ConflictError,
    NotFoundError,
    TaskDeskError,
    TransitionError,
    ValidationError,
)
from app.core.records import ExecutionRecord, TaskRecord
from app.core.targets import Target
from app.store import executions, hotpath, hotsql, tasks
from app.store.claimwrite import claim_update_sql
from app.store.dialect import current_db
from app.store.hotpath import FailItem, complete_many, fail_many, start_many
from app.store.models import Task
from app.store.rows import dicts
from tests.store.helpers import T0, is_pg, spec


def _claim(*uids: str, owner: str = "w", now: float = T0, lease_s: float = 30,
           **fields: Any) -> None:
    tasks.enqueue_many([spec(uid=uid, target=Target.host(), **fields) for uid in uids],
                       now=now - 1)
    got = tasks.claim(owner, [tasks.Slot(None, host=True, capacity=len(uids))],
                      lease_s=lease_s, now=now)
    assert sorted(t.uid for t in got["host"]) == sorted(uids)


def _run(*uids: str, owner: str = "w", now: float = T0, **fields: Any
         ) -> dict[str, ExecutionRecord]:
    _claim(*uids, owner=owner, now=now, **fields)
    started = start_many(owner, list(uids), now=now)
    return {_ok(r)[0].uid: _ok(r)[1] for r in started}


def _ok(result: Any) -> Any:
    assert not isinstance(result, TaskDeskError), result
    return result


def _rows(*uids: str) -> list[dict[str, Any]]:
    return dicts(Task.select().where(Task.uid.in_(uids)).order_by(Task.uid))


def test_start_many_opens_one_execution_per_task_exactly_as_stored(
        store: peewee.Database) -> None:
    tasks.enqueue_many([spec(uid="a", payload={"cmd": "ls"}, queue="lab", timeout_s=42,
                             created_by="ana", target=Target.host()),
                        spec(uid="b", target=Target.host())], now=T0 - 1)
    tasks.claim("w", [tasks.Slot(None, host=True, capacity=2)], lease_s=30, now=T0)
    results = start_many("w", ["b", "a"], now=T0 + 1)
    assert [_ok(r)[0].uid for r in results] == ["b", "a"]
    for task, execution in results:  # type: ignore[misc]
        assert task == tasks.get_task(task.uid)
        assert execution == executions.get_execution(execution.id)
        assert task.state is TaskState.RUNNING and task.attempts == 1
        assert (execution.status, execution.attempt, execution.started_at) == (
            ExecStatus.STARTED, 1, T0 + 1)
        assert execution.metadata == {"worker": "w"} and execution.finished_at is None
    _, a_exec = results[1]  # type: ignore[misc]
    assert (a_exec.task_name, a_exec.module, a_exec.kwargs, a_exec.created_by,
            a_exec.timeout_s) == ("adb.shell", "lab", {"cmd": "ls"}, "ana", 42.0)


def test_a_batch_mixing_good_and_bad_starts_changes_only_the_good(
        store: peewee.Database) -> None:
    _claim("good1", "good2", "mine-expired", lease_s=30)
    _claim("theirs", owner="other")
    tasks.enqueue(spec(uid="pending"), now=T0)
    _claim("cancelled")
    tasks.request_cancel("cancelled", now=T0 + 1)  # cancelled while only claimed
    # Make one lease expire before the others: renew the rest.
    tasks.renew_leases("w", ["good1", "good2"], lease_s=100, now=T0 + 1)
    untouched = ("mine-expired", "theirs", "pending", "cancelled")
    before = _rows(*untouched)
    results = start_many("w", ["good1", "mine-expired", "theirs", "nope", "pending",
                               "cancelled", 7, "good2"], now=T0 + 31)  # type: ignore[list-item]
    assert [type(r).__name__ for r in results] == [
        "tuple", "ConflictError", "ConflictError", "NotFoundError", "ConflictError",
        "ConflictError", "NotFoundError", "tuple"]
    assert "expired before it started" in str(results[1])
    assert str(results[2]) == "task theirs is held by 'other', not 'w'"
    assert str(results[4]) == "task pending is pending, not claimed"
    assert str(results[5]) == "task cancelled is cancelled, not claimed"
    assert _rows(*untouched) == before
    assert executions.executions_for_task("mine-expired") == []
    assert tasks.get_task("good1").state is TaskState.RUNNING
    assert tasks.get_task("good2").state is TaskState.RUNNING


def test_a_uid_listed_twice_is_started_once(store: peewee.Database) -> None:
    _claim("t")
    first, second = start_many("w", ["t", "t"], now=T0)
    assert _ok(first)[1].attempt == 1
    assert isinstance(second, ConflictError) and "is running, not claimed" in str(second)
    assert len(executions.executions_for_task("t")) == 1


def test_execution_numbers_continue_after_an_interrupt(store: peewee.Database) -> None:
    """interrupt refunds the attempt but its execution row stays: the next start must
    not reuse its number (max(attempt) + 1, read in the batch's one SELECT)."""
    first = _run("t", "fresh", max_attempts=1)
    tasks.interrupt("t", "w", first["t"].id, error="shut down", now=T0 + 1)
    tasks.claim("w", [tasks.Slot(None, host=True)], lease_s=30, now=T0 + 2)
    _claim("other", now=T0 + 2)
    again = start_many("w", ["t", "other"], now=T0 + 2)
    task, execution = _ok(again[0])
    assert (task.attempts, execution.attempt) == (1, 2)
    assert _ok(again[1])[1].attempt == 1
    assert [e.attempt for e in executions.executions_for_task("t")] == [1, 2]


def test_complete_many_records_results_and_merges_metadata(store: peewee.Database) -> None:
    execs = _run("a", "b")
    executions.merge_metadata(execs["a"].id, {"progress_percent": 50, "keep": 1})
    results = complete_many("w", [
        ("a", execs["a"].id, {"exit_code": 0}, {"progress_percent": 100, "artifact": "a.png"}),
        ("b", execs["b"].id, ["x", 1.5, None], None),
    ], now=T0 + 5)
    a, b = (_ok(r) for r in results)
    assert a == tasks.get_task("a") and b == tasks.get_task("b")
    assert a.state is TaskState.SUCCEEDED and a.result == {"exit_code": 0}
    assert a.finished_at == T0 + 5 and a.lease_owner is None and a.lease_expires_at is None
    row = executions.get_execution(execs["a"].id)
    assert (row.status, row.result, row.finished_at) == (ExecStatus.SUCCESS, {"exit_code": 0},
                                                         T0 + 5)
    assert row.metadata == {"worker": "w", "progress_percent": 100, "keep": 1,
                            "artifact": "a.png"}
    assert executions.get_execution(execs["b"].id).metadata == {"worker": "w"}
    assert b.result == ["x", 1.5, None]


def test_complete_many_given_the_started_records_returns_what_is_stored(
        store: peewee.Database) -> None:
    """The engine passes the record its start returned: the store then reads only what
    may have changed while the task ran, and must still return exactly the stored task."""
    tasks.enqueue_many([spec(uid=u, target=Target.host(), payload={"n": i})
                        for i, u in enumerate(("a", "b", "c"))], now=T0 - 1)
    got = tasks.claim("w", [tasks.Slot(None, host=True, capacity=3)], lease_s=30, now=T0)
    assert len(got["host"]) == 3
    records = {t.uid: (t, e) for t, e in (_ok(r) for r in start_many("w", ["a", "b", "c"],
                                                                      now=T0))}
    tasks.set_progress("a", 60, "most of it")  # written while it ran
    tasks.request_cancel("b", now=T0 + 1)  # asked while it ran; it finished anyway
    stale = dataclasses.replace(records["c"][0], attempts=7)
    before_c = _rows("c")
    results = complete_many("w", [
        ("a", records["a"][1].id, {"ok": 1}, None, records["a"][0]),
        ("b", records["b"][1].id, None, None, records["b"][0]),
        ("c", records["c"][1].id, None, None, stale),
    ], now=T0 + 2)
    a, b = _ok(results[0]), _ok(results[1])
    assert a == tasks.get_task("a") and b == tasks.get_task("b")
    assert (a.progress_percent, a.progress_message) == (60, "most of it")
    assert b.cancel_requested and b.state is TaskState.SUCCEEDED
    assert isinstance(results[2], ConflictError) and _rows("c") == before_c


def test_a_batch_mixing_good_and_bad_completions(store: peewee.Database) -> None:
    execs = _run("good", "theirs-exec", "bad-result", "terminal", "done", "reaped", "flagged")
    other = _run("other-task", owner="other")
    executions.update_execution(execs["terminal"].id, status=ExecStatus.FAILURE, error="swept")
    _ok(complete_many("w", [("done", execs["done"].id, 1, None)], now=T0 + 1)[0])
    tasks.request_cancel("flagged", now=T0 + 1)
    # "reaped": its lease ran out and the reaper gave it back meanwhile.
    tasks.renew_leases("w", [u for u in execs if u != "reaped"], lease_s=1000, now=T0 + 1)
    tasks.reap_expired(now=T0 + 31)
    before = _rows("theirs-exec", "bad-result", "terminal", "done", "reaped", "other-task")
    results = complete_many("w", [
        ("theirs-exec", other["other-task"].id, 1, None),
        ("good", execs["good"].id, {"ok": True}, None),
        ("bad-result", execs["bad-result"].id, {"x": object()}, None),
        ("bad-result", execs["bad-result"].id, 1, {"nan": float("nan")}),
        ("terminal", execs["terminal"].id, 1, None),
        ("done", execs["done"].id, 1, None),
        ("reaped", execs["reaped"].id, 1, None),
        ("nope", execs["good"].id, 1, None),
        ("other-task", other["other-task"].id, 1, None),
        ("good", 999_999_999, 1, None),
        ("flagged", execs["flagged"].id, "done anyway", None),
    ], now=T0 + 40)
    kinds = [type(r) for r in results]
    assert kinds == [ConflictError, TaskRecord, ValidationError, ValidationError,
                     TransitionError, ConflictError, ConflictError, NotFoundError,
                     ConflictError, ConflictError, TaskRecord]
    assert str(results[0]) == (f"execution {other['other-task'].id} belongs to task "
                               "other-task, not theirs-exec")
    assert str(results[5]) == "task done is succeeded, not running"
    assert str(results[6]) == "task reaped is pending, not running"
    # "good" was completed by the second item, so the tenth finds it finished.
    assert str(results[9]) == "task good is succeeded, not running"
    assert _rows("theirs-exec", "bad-result", "terminal", "done", "reaped",
                 "other-task") == before
    assert executions.get_execution(execs["bad-result"].id).status is ExecStatus.STARTED
    assert executions.get_execution(execs["terminal"].id).status is ExecStatus.FAILURE
    # A task whose cancel was requested but that succeeded is a success: the work is done.
    assert tasks.get_task("flagged").state is TaskState.SUCCEEDED
    assert tasks.get_task("good").result == {"ok": True}


def test_complete_of_an_unknown_execution_is_not_found(store: peewee.Database) -> None:
    _run("t")
    (result,) = complete_many("w", [("t", 123_456_789, 1, None)], now=T0)
    assert isinstance(result, NotFoundError) and str(result) == "no execution 123456789"
    (result,) = complete_many("w", [("t", "12", 1, None)], now=T0)  # type: ignore[list-item]
    assert isinstance(result, NotFoundError)


def test_fail_many_applies_backoff_death_and_permanent_failure(store: peewee.Database) -> None:
    execs = _run("retry", "explicit", "last", "permanent", "cancel", max_attempts=2)
    execs |= _run("last1", max_attempts=1, now=T0)
    tasks.request_cancel("cancel", now=T0 + 1)
    # A traceback already on the row is kept when the failure brings none.
    executions.update_execution(execs["permanent"].id, traceback="earlier")
    results = fail_many("w", [
        FailItem("retry", execs["retry"].id, "boom", traceback="Traceback...",
                 metadata={"exit_code": 2}),
        FailItem("explicit", execs["explicit"].id, "busy", retry_delay=90),
        FailItem("last1", execs["last1"].id, "boom", reason="device_lost"),
        FailItem("permanent", execs["permanent"].id, "bad apk", retryable=False),
        FailItem("cancel", execs["cancel"].id, "killed"),
    ], now=T0 + 2)
    retry, explicit, last, permanent, cancel = (_ok(r) for r in results)
    for task in (retry, explicit, last, permanent, cancel):
        assert task == tasks.get_task(task.uid)
        assert task.lease_owner is None and task.lease_expires_at is None
    assert retry.state is TaskState.PENDING and retry.attempts == 1
    assert 4.0 <= retry.not_before - (T0 + 2) <= 6.0  # 5 s ± 20 % for the first retry
    assert retry.device_serial is None and retry.last_error == "boom"
    assert retry.finished_at is None
    assert explicit.state is TaskState.PENDING and explicit.not_before == T0 + 92
    assert last.state is TaskState.DEAD and last.finished_at == T0 + 2
    assert permanent.state is TaskState.FAILED and permanent.attempts == 1
    assert cancel.state is TaskState.CANCELLED and cancel.finished_at == T0 + 2
    row = executions.get_execution(execs["retry"].id)
    assert (row.status, row.error, row.traceback, row.finished_at) == (
        ExecStatus.FAILURE, "boom", "Traceback...", T0 + 2)
    assert row.metadata == {"worker": "w", "exit_code": 2, "reason": "error"}
    assert executions.get_execution(execs["last1"].id).metadata["reason"] == "device_lost"
    assert executions.get_execution(execs["explicit"].id).traceback is None
    assert executions.get_execution(execs["permanent"].id).traceback == "earlier"
    # The retried task can run again as attempt 2, with a longer backoff next time.
    tasks.claim("w", [tasks.Slot(None, host=True)], lease_s=30, now=retry.not_before)
    _, second = _ok(start_many("w", ["retry"], now=retry.not_before)[0])
    assert second.attempt == 2
    again = _ok(fail_many("w", [FailItem("retry", second.id, "boom")],
                          now=retry.not_before)[0])
    assert again.state is TaskState.DEAD  # max_attempts=2 used up


@pytest.mark.parametrize("item", [
    {"error": ""}, {"error": "x", "reason": ""}, {"error": "x", "reason": "r" * 65},
    {"error": "x", "retry_delay": -1}, {"error": "x", "retry_delay": float("inf")},
    {"error": "x", "retry_delay": True}, {"error": "x", "metadata": {"k": object()}},
    {"error": "x", "metadata": ["not", "a", "dict"]}, {"error": "x", "metadata": {1: 2}},
])
def test_bad_failure_input_is_returned_and_changes_nothing(store: peewee.Database,
                                                           item: dict[str, Any]) -> None:
    execs = _run("bad", "good")
    before = _rows("bad")
    bad, good = fail_many("w", [FailItem("bad", execs["bad"].id, **item),
                                FailItem("good", execs["good"].id, "boom")], now=T0)
    assert isinstance(bad, ValidationError)
    assert _ok(good).state is TaskState.PENDING
    assert _rows("bad") == before
    assert executions.get_execution(execs["bad"].id).status is ExecStatus.STARTED


def test_fail_many_refuses_what_fail_refuses(store: peewee.Database) -> None:
    execs = _run("a", "b")
    other = _run("theirs", owner="other")
    executions.update_execution(execs["b"].id, status=ExecStatus.SUCCESS, result=1)
    results = fail_many("w", [
        FailItem("theirs", other["theirs"].id, "boom"),
        FailItem("a", other["theirs"].id, "boom"),
        FailItem("b", execs["b"].id, "boom"),
        FailItem("nope", execs["a"].id, "boom"),
        "not an item",  # type: ignore[list-item]
        FailItem("a", execs["a"].id, "boom"),
        FailItem("a", execs["a"].id, "again"),
    ], now=T0)
    assert [type(r) for r in results] == [ConflictError, ConflictError, TransitionError,
                                          NotFoundError, ValidationError, TaskRecord,
                                          ConflictError]
    assert str(results[6]) == "task a is pending, not running"
    assert tasks.get_task("theirs").state is TaskState.RUNNING
    assert tasks.get_task("b").state is TaskState.RUNNING


def test_batches_reject_a_bad_owner_and_accept_empty_lists(store: peewee.Database) -> None:
    for bad in ("", " ", "x" * 129):
        with pytest.raises(ValidationError):
            start_many(bad, ["t"])
        with pytest.raises(ValidationError):
            complete_many(bad, [])
        with pytest.raises(ValidationError):
            fail_many(bad, [])
    assert start_many("w", []) == [] and complete_many("w", []) == []
    assert fail_many("w", []) == []


def test_a_batch_larger_than_one_chunk(store: peewee.Database) -> None:
    uids = [f"t{i:04d}" for i in range(hotpath.CHUNK + 20)]
    _claim(*uids)
    started = [_ok(r) for r in start_many("w", uids, now=T0)]
    assert len({e.id for _, e in started}) == len(uids)
    done = complete_many("w", [(t.uid, e.id, i, None) for i, (t, e) in enumerate(started)],
                         now=T0 + 1)
    assert [_ok(t).result for t in done] == list(range(len(uids)))
    assert tasks.count_by_state()[TaskState.SUCCEEDED] == len(uids)
    assert executions.get_execution(started[-1][1].id).result == len(uids) - 1


def test_without_returning_new_execution_ids_are_looked_up(
        sqlite_store: peewee.Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite before 3.35 (RHEL 9 ships 3.34) has no RETURNING."""
    monkeypatch.setattr(hotsql, "SQLITE_RETURNING", False)
    assert not hotsql.Sql.of(current_db()).returning
    _run("old")
    tasks.interrupt("old", "w", executions.executions_for_task("old")[0].id, error="x")
    tasks.claim("w", [tasks.Slot(None, host=True)], lease_s=30, now=T0)
    _claim("new")
    results = start_many("w", ["old", "new"], now=T0)
    for task, execution in (_ok(r) for r in results):
        assert execution == executions.latest_execution_for_task(task.uid)
    assert [_ok(r)[1].attempt for r in results] == [2, 1]


def test_hot_queries_use_the_indexes_on_sqlite(sqlite_store: peewee.Database) -> None:
    """Without planner statistics SQLite could walk the state index or the whole
    table; the batch reads and the per-row UPDATEs (the claim's too) must look rows
    up by uid/id."""
    sql = hotsql.Sql.of(sqlite_store)
    plans = {
        "read": (hotsql._read_tasks_sql("?", False, True, 3), ["a", "b", "c"]),
        "start": (hotsql._start_sql("?", False, 3), ["running", T0, 1, 2, 3, "claimed"]),
        "execs": (hotsql._read_executions_sql("?", False, 3), [1, 2, 3]),
        "finish": (sql.complete_task.sqlite("?"), ["succeeded", "1", T0, T0, None, None, 1,
                                                   "running"]),
        "claim": (claim_update_sql("?", False, (2, 1), (), 3),
                  ["claimed", "w", T0, T0, 1, 2, "S1", 3, "S2", 1, 2, 3, "pending"]),
    }
    for name, (text, params) in plans.items():
        plan = " | ".join(row[-1] for row in sqlite_store.execute_sql(
            f"EXPLAIN QUERY PLAN {text}", params).fetchall())
        assert "SCAN task" not in plan and "SCAN execution" not in plan, (name, plan)
        assert "USING INDEX task_state" not in plan, (name, plan)


def test_single_item_calls_are_the_batch_calls(store: peewee.Database) -> None:
    """lifecycle.start/complete/fail delegate to the batch functions (one
    implementation): same records, and errors raised instead of returned."""
    _claim("t")
    task, execution = tasks.start("t", "w", now=T0)
    assert execution.attempt == 1 and task == tasks.get_task("t")
    with pytest.raises(ConflictError, match="is running, not claimed"):
        tasks.start("t", "w", now=T0)
    with pytest.raises(ValidationError):
        tasks.fail("t", "w", execution.id, error="x", metadata="text")  # type: ignore[arg-type]
    done = tasks.complete("t", "w", execution.id, {"ok": 1}, now=T0 + 1)
    assert done == tasks.get_task("t")
    if is_pg(store):
        assert hotsql.Sql.of(store).postgres and hotsql.Sql.of(store).returning
