"""A claimed task's life under its lease: start, renew, finish, give back, reap.

Every function here checks that the caller (``owner``) still holds the task in
the expected state — a late or stale call is a ``ConflictError`` and changes
nothing — and writes the task and its execution row in one transaction.

Outcomes of an attempt:
- ``complete``: task ``succeeded``, execution SUCCESS;
- ``fail``: execution FAILURE; the task goes back to ``pending`` after a backoff
  while attempts remain, else ``dead`` (retryable) or ``failed`` (permanent);
- ``interrupt``: the engine stopped the attempt itself (shutdown): execution
  FAILURE, task back to ``pending`` at once; an interruption never uses up the
  last attempt (the next attempt gets a fresh number and ``max_attempts`` is
  checked when it fails);
- ``revoke``: cancelled on request, execution REVOKED;
- ``reap_expired``: the owner vanished; the attempt is a FAILURE with reason
  ``lease_expired`` and the task returns to the queue (or is ``dead``).
A task whose cancel was requested while it ran ends ``cancelled`` whatever the
outcome but success (the work is done then).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, TypeVar

import peewee

from app.core import backoff
from app.core.enums import TERMINAL_EXEC_STATUSES, ExecStatus, TaskState
from app.core.errors import ConflictError, NotFoundError, TaskDeskError
from app.core.records import ExecutionRecord, TaskRecord
from app.store import executions, hotpath
from app.store.dialect import for_update, write_transaction
from app.store.hotpath import check_failure, check_reason, finished, requeued
from app.store.models import Execution, Task
from app.store.rows import column, dicts
from app.store.taskrows import (
    check_lease,
    check_owner,
    owned_row,
    task_record,
    task_row,
    when,
)

log = logging.getLogger(__name__)

LEASE_EXPIRED_ERROR = "lease expired (worker lost)"
LEASE_EXPIRED_REASON = "lease_expired"
_ACTIVE = (TaskState.CLAIMED.value, TaskState.RUNNING.value)
_CHUNK = 500


def start(uid: str, owner: str, *, now: float | None = None
          ) -> tuple[TaskRecord, ExecutionRecord]:
    """claimed -> running: count the attempt and open its execution row (STARTED).

    Raises:
        NotFoundError: no such task.
        ConflictError: not claimed by ``owner``, or the claim's lease has expired.
    """
    return _one(hotpath.start_many(owner, [uid], now=now))


def renew_leases(owner: str, uids: Sequence[str], *, lease_s: float,
                 now: float | None = None) -> list[str]:
    """Extend the leases ``owner`` holds on ``uids``; returns the uids NOT renewed
    (the lease was lost: reaped, cancelled, finished, or held by someone else)."""
    check_owner(owner)
    lease = check_lease(lease_s)
    at = when(now)
    wanted = list(dict.fromkeys(uids))
    renewed: set[str] = set()
    with write_transaction():
        for start_at in range(0, len(wanted), _CHUNK):
            chunk = wanted[start_at:start_at + _CHUNK]
            mine = (Task.uid.in_(chunk)) & (Task.lease_owner == owner) & (
                Task.state.in_(_ACTIVE))
            Task.update({Task.lease_expires_at: at + lease}).where(mine).execute()
            renewed.update(column(Task.select(Task.uid).where(mine)))
    return [uid for uid in wanted if uid not in renewed]


def complete(uid: str, owner: str, execution_id: int, result: Any, *,
             metadata: dict[str, Any] | None = None, now: float | None = None) -> TaskRecord:
    """running -> succeeded; the execution becomes SUCCESS with ``result``."""
    return _one(hotpath.complete_many(owner, [(uid, execution_id, result, metadata)], now=now))


def fail(uid: str, owner: str, execution_id: int, *, error: str,
         traceback: str | None = None, reason: str = "error", retryable: bool = True,
         retry_delay: float | None = None, metadata: dict[str, Any] | None = None,
         now: float | None = None) -> TaskRecord:
    """Record a failed attempt and decide what happens next (see the module doc)."""
    item = hotpath.FailItem(uid, execution_id, error, traceback=traceback, reason=reason,
                            retryable=retryable, retry_delay=retry_delay, metadata=metadata)
    return _one(hotpath.fail_many(owner, [item], now=now))


def interrupt(uid: str, owner: str, execution_id: int, *, error: str,
              metadata: dict[str, Any] | None = None, reason: str = "interrupted",
              now: float | None = None) -> TaskRecord:
    """The engine stopped the attempt itself (e.g. shutdown): FAILURE, back to pending.

    The attempt is recorded but not counted against ``max_attempts``: the task did
    nothing wrong, so a task with one attempt is not killed by a restart.
    """
    check_owner(owner)
    check_failure(error, reason)
    at = when(now)
    with write_transaction():
        row = owned_row(uid, owner, TaskState.RUNNING)
        _own_execution(execution_id, uid)
        executions.update_execution(execution_id, status=ExecStatus.FAILURE, error=error,
                                    metadata={**(metadata or {}), "reason": reason}, now=at)
        changes = (finished(TaskState.CANCELLED, at) if row["cancel_requested"]
                   else requeued(at, not_before=None))
        _write(row, {**changes, "last_error": error, "attempts": max(0, row["attempts"] - 1)})
    return task_record(row)


def release(uid: str, owner: str, *, now: float | None = None) -> TaskRecord:
    """claimed (never started) -> pending; no attempt is counted."""
    check_owner(owner)
    at = when(now)
    with write_transaction():
        row = owned_row(uid, owner, TaskState.CLAIMED)
        _write(row, requeued(at, not_before=row["not_before"]))
    return task_record(row)


def request_cancel(uid: str, *, actor: str = "", now: float | None = None) -> TaskRecord:
    """Cancel a task: pending/claimed ones at once; a running one is flagged
    (``cancel_requested``) for the engine to interrupt and ``revoke``.

    Raises:
        ConflictError: the task already finished.
    """
    at = when(now)
    with write_transaction():
        row = task_row(uid, lock=True)
        state = TaskState(row["state"])
        if state.is_terminal:
            raise ConflictError(f"task {uid} already finished ({state.value})")
        if state is TaskState.RUNNING:
            if not row["cancel_requested"]:
                _write(row, {"cancel_requested": True, "updated_at": at})
        else:
            _write(row, {**finished(TaskState.CANCELLED, at), "cancel_requested": True})
    log.info("cancel of task %s (%s) requested by %s", uid, state.value, actor or "unknown")
    return task_record(row)


def revoke(uid: str, owner: str, execution_id: int, *, reason: str = "cancelled",
           now: float | None = None) -> TaskRecord:
    """running -> cancelled; the execution becomes REVOKED."""
    check_owner(owner)
    check_reason(reason)
    at = when(now)
    with write_transaction():
        row = owned_row(uid, owner, TaskState.RUNNING)
        _own_execution(execution_id, uid)
        executions.update_execution(execution_id, status=ExecStatus.REVOKED,
                                    metadata={"reason": reason}, now=at)
        _write(row, {**finished(TaskState.CANCELLED, at), "last_error": reason})
    return task_record(row)


def reap_expired(*, now: float | None = None, owner_prefix: str | None = None,
                 live_owner: str | None = None) -> list[TaskRecord]:
    """Give back the work of owners that vanished.

    Reaps claimed/running tasks whose lease expired and, when ``owner_prefix``
    is given (start-up after a crash), also those whose owner starts with it
    and is not ``live_owner``. A claimed task simply returns to pending; a
    running one loses its attempt: the open execution becomes FAILURE
    (``lease expired (worker lost)``, reason ``lease_expired``) and the task is
    requeued after a backoff, or ``dead`` when no attempt is left.
    """
    at = when(now)
    expired = Task.state.in_(_ACTIVE) & (Task.lease_expires_at < at)
    condition = expired
    if owner_prefix:
        orphaned = (
            Task.state.in_(_ACTIVE)
            & (peewee.fn.SUBSTR(Task.lease_owner, 1, len(owner_prefix)) == owner_prefix)
        )
        if live_owner is not None:
            orphaned &= Task.lease_owner != live_owner
        condition = expired | orphaned
    reaped: list[TaskRecord] = []
    with write_transaction():
        rows = dicts(for_update(Task.select().where(condition)))
        for row in rows:
            if row["state"] == TaskState.CLAIMED.value:
                _write(row, requeued(at, not_before=row["not_before"]))
            else:
                _fail_open_execution(row["uid"], at)
                attempts = int(row["attempts"])
                if row["cancel_requested"]:
                    changes = finished(TaskState.CANCELLED, at)
                elif attempts < int(row["max_attempts"]):
                    changes = requeued(at, not_before=at + backoff.retry_delay(attempts))
                else:
                    changes = finished(TaskState.DEAD, at)
                _write(row, {**changes, "last_error": LEASE_EXPIRED_ERROR})
            reaped.append(task_record(row))
    if reaped:
        log.warning("reaped %d task(s) whose owner vanished", len(reaped))
    return reaped


# -- internals -------------------------------------------------------------------------
R = TypeVar("R")


def _one(results: list[R | TaskDeskError]) -> R:
    """The single result of a one-item batch call, raising its error."""
    (result,) = results
    if isinstance(result, TaskDeskError):
        raise result
    return result


def _write(row: dict[str, Any], changes: dict[str, Any]) -> None:
    """Apply ``changes`` to the task row (guarded by its current state) and to ``row``."""
    fields = {getattr(Task, name): value for name, value in changes.items()}
    updated = Task.update(fields).where(Task.id == row["id"],
                                        Task.state == row["state"]).execute()
    if updated != 1:
        raise ConflictError(f"task {row['uid']} changed meanwhile; try again")
    row.update(changes)


def _own_execution(execution_id: int, uid: str) -> None:
    owner_task = (Execution.select(Execution.task_id)
                  .where(Execution.id == execution_id).scalar())
    if owner_task is None:
        raise NotFoundError(f"no execution {execution_id}")
    if owner_task != uid:
        raise ConflictError(f"execution {execution_id} belongs to task {owner_task}, not {uid}")


def _fail_open_execution(uid: str, at: float) -> None:
    open_row = (
        Execution.select(Execution.id)
        .where(Execution.task_id == uid,
               Execution.status.not_in([s.value for s in TERMINAL_EXEC_STATUSES]))
        .order_by(Execution.attempt.desc())
        .first()
    )
    if open_row is not None:
        executions.update_execution(
            open_row.id, status=ExecStatus.FAILURE, error=LEASE_EXPIRED_ERROR,
            metadata={"reason": LEASE_EXPIRED_REASON}, now=at)
