"""The engine's hot path: start, complete and fail many attempts in one transaction.

Every executed task passes through ``start`` and then ``complete`` or ``fail``.
Built with peewee, each call cost about a dozen queries and most of its time
went into *building* SQL, not running it. Here the SQL is written once per
backend (see ``_Sql``) and a whole batch costs a handful of statements: one
SELECT of the task rows (``uid IN (...)``, locked on PostgreSQL; for a start
it also reads the last execution number), one SELECT of the execution rows,
then one UPDATE of the tasks and one multi-row INSERT (start) or one batched
UPDATE (finish) of the executions.

The semantics are exactly those of ``lifecycle.start`` / ``complete`` /
``fail``, which delegate here: the same checks in the same order, the same
execution fields and metadata merge, the same transitions and backoff, the
same error messages. Per-item failures (no such task, wrong owner or state,
expired lease, unknown or foreign execution, terminal execution, bad input)
are *returned* in the item's place, never raised: one bad item never spoils
the batch, and nothing is written for it. Items behave as if handled one
after the other: a uid listed twice is handled in a second round that sees
the first one's outcome.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import peewee

from app.core import backoff
from app.core.enums import EXEC_TRANSITIONS, ExecStatus, TaskState
from app.core.errors import (
    ConflictError,
    NotFoundError,
    TaskDeskError,
    TransitionError,
    ValidationError,
)
from app.core.jsontext import encode_json, encode_strict_json, is_flat_json_object
from app.core.records import TaskRecord, amended
from app.store.attempts import StartResult, open_attempts
from app.store.dialect import current_db, write_transaction
from app.store.hotsql import FAIL_TASK_COLUMNS, Sql, decode_json
from app.store.taskrows import Row, check_owner, task_record, when

CompleteItem = tuple[str, int, Any, "dict[str, Any] | None"] | tuple[
    str, int, Any, "dict[str, Any] | None", TaskRecord]
"""``(uid, execution_id, result, metadata)``: the arguments of ``lifecycle.complete``;
optionally followed by the task's record as its ``start`` returned it, which spares
reading the whole row again (only what may change while it runs is read)."""

CHUNK = 500  # items per SELECT ... IN (...); a larger batch is cut into chunks

I = TypeVar("I")  # noqa: E741 - an item of a batch
R = TypeVar("R")


@dataclass(frozen=True)
class FailItem:
    """One failed attempt: the arguments of ``lifecycle.fail``."""

    uid: str
    execution_id: int
    error: str
    traceback: str | None = None
    reason: str = "error"
    retryable: bool = True
    retry_delay: float | None = None
    metadata: dict[str, Any] | None = None


def start_many(owner: str, uids: Sequence[str], *, now: float | None = None
               ) -> list[StartResult | TaskDeskError]:
    """claimed -> running for each uid: count the attempt, open its execution (STARTED).

    Returns:
        per uid, ``(task, execution)`` or the error ``lifecycle.start`` would raise:
        ``NotFoundError``, or ``ConflictError`` (not claimed by ``owner``, lease expired).

    Raises:
        ValidationError: ``owner`` is malformed (nothing is done).
    """
    check_owner(owner)
    at = when(now)
    db = current_db()
    sql = Sql.of(db)
    return _batched(db, list(uids), list(uids),
                    lambda chunk: _start_chunk(db, sql, owner, chunk, at))


def complete_many(owner: str, items: Sequence[CompleteItem], *, now: float | None = None
                  ) -> list[TaskRecord | TaskDeskError]:
    """running -> succeeded for each ``(uid, execution_id, result, metadata)``; the
    execution becomes SUCCESS with ``result``, ``metadata`` merged into its own.

    Returns:
        per item, the task or the error ``lifecycle.complete`` would raise.

    Raises:
        ValidationError: ``owner`` is malformed (nothing is done).
    """
    check_owner(owner)
    at = when(now)
    db = current_db()
    sql = Sql.of(db)
    return _batched(db, list(items), [item[0] for item in items],
                    lambda chunk: _complete_chunk(db, sql, owner, chunk, at))


def fail_many(owner: str, items: Sequence[FailItem], *, now: float | None = None
              ) -> list[TaskRecord | TaskDeskError]:
    """Record failed attempts and decide what happens to each task (see ``lifecycle``):
    back to pending after a backoff while attempts remain, else ``dead`` (retryable)
    or ``failed``; ``cancelled`` when a cancel was requested.

    Returns:
        per item, the task or the error ``lifecycle.fail`` would raise.

    Raises:
        ValidationError: ``owner`` is malformed (nothing is done).
    """
    check_owner(owner)
    at = when(now)
    db = current_db()
    sql = Sql.of(db)
    keys = [item.uid if isinstance(item, FailItem) else None for item in items]
    return _batched(db, list(items), keys,
                    lambda chunk: _fail_chunk(db, sql, owner, chunk, at))


# -- task changes shared with lifecycle ------------------------------------------------------
NO_LEASE: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}


def requeued(at: float, *, not_before: float | None) -> dict[str, Any]:
    """The changes that put a task back to pending (its slot and lease cleared)."""
    return {"state": TaskState.PENDING.value, "not_before": not_before, "updated_at": at,
            "device_serial": None, "agent_uuid": None, **NO_LEASE}


def finished(state: TaskState, at: float) -> dict[str, Any]:
    """The changes that end a task in ``state``."""
    return {"state": state.value, "finished_at": at, "updated_at": at, **NO_LEASE}


def check_failure(error: str, reason: str) -> None:
    """Raises ValidationError unless ``error`` is non-empty text and ``reason`` is valid."""
    if not isinstance(error, str) or not error.strip():
        raise ValidationError("error must be a non-empty text", field="error")
    check_reason(reason)


def check_reason(reason: str) -> None:
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 64:
        raise ValidationError("reason must be text of 1 to 64 characters", field="reason")


def check_retry_delay(retry_delay: float | None) -> None:
    if retry_delay is not None and (
        isinstance(retry_delay, bool) or not isinstance(retry_delay, int | float)
        or not math.isfinite(retry_delay) or retry_delay < 0
    ):
        raise ValidationError("retry_delay must be a non-negative number", field="retry_delay")


# -- batches -------------------------------------------------------------------------------
def _batched(db: peewee.Database, items: list[I], keys: list[Any],
             run_chunk: Callable[[list[I]], list[R]]) -> list[R]:
    """Run ``run_chunk`` over rounds (no key twice in a round) cut in chunks, all in
    one transaction; each result lands at its item's position."""
    out: list[Any] = [None] * len(items)
    if not items:
        return out
    with write_transaction(db):
        for positions in _rounds(keys):
            for begin in range(0, len(positions), CHUNK):
                chunk = positions[begin:begin + CHUNK]
                results = run_chunk([items[i] for i in chunk])
                for position, result in zip(chunk, results, strict=True):
                    out[position] = result
    return out


def _rounds(keys: list[Any]) -> list[list[int]]:
    """Positions split into rounds so that no key appears twice in a round, in order.
    (A key that is not text names no task; such items fail, and may share a round.)"""
    seen: dict[str, int] = {}
    rounds: list[list[int]] = []
    for position, key in enumerate(keys):
        index = 0
        if isinstance(key, str):
            index = seen.get(key, 0)
            seen[key] = index + 1
        if index == len(rounds):
            rounds.append([])
        rounds[index].append(position)
    return rounds


def _start_chunk(db: peewee.Database, sql: Sql, owner: str, uids: list[str],
                 at: float) -> list[StartResult | TaskDeskError]:
    rows = sql.read_tasks(db, _texts(uids), with_last_attempt=True)
    checked: list[Row | TaskDeskError] = []
    for uid in uids:
        row = rows.get(uid) if isinstance(uid, str) else None
        error = _held_error(row, uid, owner, TaskState.CLAIMED)
        if error is None and row is not None and (
                row["lease_expires_at"] is not None and row["lease_expires_at"] < at):
            error = ConflictError(f"the lease on task {uid} expired before it started")
        checked.append(error if error is not None else row)  # type: ignore[arg-type]
    good = [row for row in checked if not isinstance(row, TaskDeskError)]
    if not good:
        return [error for error in checked if isinstance(error, TaskDeskError)]
    sql.start_tasks(db, [row["id"] for row in good], at)
    started = dict(zip((row["uid"] for row in good), open_attempts(db, sql, owner, good, at),
                       strict=True))
    return [item if isinstance(item, TaskDeskError) else started[item["uid"]]
            for item in checked]


def _complete_chunk(db: peewee.Database, sql: Sql, owner: str, items: list[CompleteItem],
                    at: float) -> list[TaskRecord | TaskDeskError]:
    uids = _texts(item[0] for item in items)
    known = {item[4].uid: item[4] for item in items
             if len(item) == 5 and isinstance(item[4], TaskRecord)}
    rows = (sql.read_running_tasks(db, uids) if len(known) == len(uids)
            else sql.read_tasks(db, uids))
    execs = sql.read_executions(db, _ids(item[1] for item in items))
    results: list[TaskRecord | TaskDeskError] = []
    exec_writes: list[list[Any]] = []
    task_writes: list[list[Any]] = []
    for uid, execution_id, result, metadata, *_ in items:
        try:
            row = _owned(rows, uid, owner)
            _check_running(row, known.get(uid))
            stored = _own_execution(execs, execution_id, uid)
            result_text = _json_text(result, "result")
            extra = _json_object(metadata)
            _check_transition(stored, execution_id, ExecStatus.SUCCESS)
        except TaskDeskError as exc:
            results.append(exc)
            continue
        exec_writes.append([ExecStatus.SUCCESS.value, _finished_at(stored, at), result_text,
                            _merged_metadata(stored, extra), execution_id])
        changes = {"state": TaskState.SUCCEEDED.value, "result": result, "finished_at": at,
                   "updated_at": at, **NO_LEASE}
        task_writes.append([changes["state"], result_text, at, at, None, None, row["id"],
                            TaskState.RUNNING.value])
        results.append(_finished_record(row, known.get(uid), changes))
    sql.update_rows(db, sql.complete_execution, exec_writes)
    sql.update_rows(db, sql.complete_task, task_writes)
    return results


def _fail_chunk(db: peewee.Database, sql: Sql, owner: str, items: list[FailItem],
                at: float) -> list[TaskRecord | TaskDeskError]:
    valid = [item for item in items if isinstance(item, FailItem)]
    rows = sql.read_tasks(db, _texts(item.uid for item in valid))
    execs = sql.read_executions(db, _ids(item.execution_id for item in valid))
    results: list[TaskRecord | TaskDeskError] = []
    exec_writes: list[list[Any]] = []
    task_writes: list[list[Any]] = []
    for item in items:
        try:
            if not isinstance(item, FailItem):
                raise ValidationError("a failure must be a FailItem")
            check_failure(item.error, item.reason)
            check_retry_delay(item.retry_delay)
            row = _owned(rows, item.uid, owner)
            stored = _own_execution(execs, item.execution_id, item.uid)
            if item.metadata is not None and not isinstance(item.metadata, dict):
                raise ValidationError("metadata must be a JSON object", field="metadata")
            extra = _json_object({**(item.metadata or {}), "reason": item.reason})
            _check_transition(stored, item.execution_id, ExecStatus.FAILURE)
        except TaskDeskError as exc:
            results.append(exc)
            continue
        exec_writes.append([
            ExecStatus.FAILURE.value, _finished_at(stored, at), str(item.error),
            str(item.traceback) if item.traceback is not None else None,
            _merged_metadata(stored, extra), item.execution_id])
        row.update({**_after_failure(row, item, at), "last_error": item.error})
        task_writes.append([row[name] for name in FAIL_TASK_COLUMNS]
                           + [row["id"], TaskState.RUNNING.value])
        results.append(task_record(row))
    sql.update_rows(db, sql.fail_execution, exec_writes)
    sql.update_rows(db, sql.fail_task, task_writes)
    return results


def _finished_record(row: Row, running: TaskRecord | None, changes: Row) -> TaskRecord:
    """The task's record after ``changes``: from its full row, or from the record its
    start returned plus the few columns that may change while it runs (see
    ``Sql.read_running_tasks``)."""
    if running is None or "payload" in row:
        row.update(changes)
        return task_record(row)
    return amended(
        running, state=TaskState(changes["state"]), result=changes["result"],
        finished_at=changes["finished_at"], updated_at=changes["updated_at"],
        lease_owner=None, lease_expires_at=None, cancel_requested=row["cancel_requested"],
        progress_percent=row["progress_percent"], progress_message=row["progress_message"])


def _after_failure(row: Row, item: FailItem, at: float) -> dict[str, Any]:
    attempts = int(row["attempts"])
    if row["cancel_requested"]:
        return finished(TaskState.CANCELLED, at)
    if item.retryable and attempts < int(row["max_attempts"]):
        delay = (item.retry_delay if item.retry_delay is not None
                 else backoff.retry_delay(attempts))
        return requeued(at, not_before=at + delay)
    return finished(TaskState.DEAD if item.retryable else TaskState.FAILED, at)


# -- checks (the messages of lifecycle's single-item calls) ---------------------------------
def _held_error(row: Row | None, uid: Any, owner: str, state: TaskState) -> TaskDeskError | None:
    if row is None:
        return NotFoundError(f"no task {uid!r}")
    if row["state"] != state.value:
        return ConflictError(f"task {uid} is {row['state']}, not {state.value}")
    if row["lease_owner"] != owner:
        return ConflictError(f"task {uid} is held by {row['lease_owner']!r}, not {owner!r}")
    return None


def _owned(rows: dict[str, Row], uid: Any, owner: str) -> Row:
    row = rows.get(uid) if isinstance(uid, str) else None
    error = _held_error(row, uid, owner, TaskState.RUNNING)
    if error is not None:
        raise error
    assert row is not None
    return row


def _check_running(row: Row, running: TaskRecord | None) -> None:
    if running is not None and (running.id != row["id"] or running.attempts != row["attempts"]):
        raise ConflictError(f"task {running.uid} is not the attempt it was started as")


def _own_execution(execs: dict[int, Row], execution_id: Any, uid: str) -> Row:
    stored = execs.get(execution_id) if _is_id(execution_id) else None
    if stored is None:
        raise NotFoundError(f"no execution {execution_id}")
    if stored["task_id"] != uid:
        raise ConflictError(
            f"execution {execution_id} belongs to task {stored['task_id']}, not {uid}")
    return stored


def _check_transition(stored: Row, execution_id: int, status: ExecStatus) -> None:
    current = ExecStatus(stored["status"])
    if status not in EXEC_TRANSITIONS[current]:
        raise TransitionError(
            f"execution {execution_id} cannot go from {current.value} to {status.value}")


# -- values ---------------------------------------------------------------------------------
def _json_text(value: Any, name: str) -> str:
    """``value`` as stored JSON text (as ``JsonField`` writes it); refuses NaN and
    non-JSON values like ``executions.update_execution`` does."""
    try:
        return encode_strict_json(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} is not JSON: {exc}", field=name) from None


def _json_object(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if is_flat_json_object(value):  # JSON as it is: no need to encode it to know
        return dict(value)
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValidationError("metadata must be a JSON object", field="metadata")
    _json_text(value, "metadata")
    return dict(value)


def _merged_metadata(stored: Row, extra: dict[str, Any]) -> str | None:
    """The execution's metadata text after a shallow merge; ``None`` (keep it as it
    is) when nothing changes: metadata is merged, never replaced."""
    if not extra:
        return None
    current = decode_json(stored["metadata_json"])
    if not isinstance(current, dict):
        current = {}
    elif all(isinstance(value, str) and current.get(key) == value
             for key, value in extra.items()):
        return None  # e.g. only the worker, which the start already wrote
    return encode_json({**current, **extra})


def _finished_at(stored: Row, at: float) -> float:
    # finished_at is stamped by the first terminal status and never moved.
    return float(stored["finished_at"]) if stored["finished_at"] is not None else at


def _texts(values: Iterable[Any]) -> list[str]:
    return list(dict.fromkeys(v for v in values if isinstance(v, str)))


def _ids(values: Iterable[Any]) -> list[int]:
    return list(dict.fromkeys(v for v in values if _is_id(v)))


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


__all__ = ["CHUNK", "CompleteItem", "FailItem", "StartResult",
           "check_failure", "check_reason", "check_retry_delay", "complete_many", "fail_many",
           "finished", "requeued", "start_many"]
