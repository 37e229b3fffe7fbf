"""Execution records: one row per attempt, in the Celery vocabulary operators know.

Rules kept here (reference 001, plus transition validation it lacks):
- a status change must be allowed by ``EXEC_TRANSITIONS``: a terminal row
  (SUCCESS, FAILURE, REVOKED) never changes status again;
- ``started_at`` is stamped on the first STARTED, ``finished_at`` on the first
  terminal status, and never moved afterwards;
- ``metadata`` is merged (shallow ``dict.update``), never replaced; the row is
  locked while merging so concurrent merges do not lose keys.

Maintenance: ``purge_old_executions`` (retention, in batches) and
``sweep_timeouts`` (STARTED rows past their timeout become FAILURE).
Queries for the history views live in ``app.store.history``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Final

import peewee

from app.core import clock
from app.core.enums import EXEC_TRANSITIONS, TERMINAL_EXEC_STATUSES, ExecStatus, TaskState
from app.core.errors import ConflictError, NotFoundError, TransitionError, ValidationError
from app.core.records import ExecutionRecord, assemble
from app.store.dialect import for_update, unindexed, write_transaction
from app.store.models import Execution, Task
from app.store.rows import column, dicts, first_dict


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final[Any] = _Unset()
"""Marks "leave this field alone" where ``None`` is a meaningful value."""

TIMEOUT_REASON = "timeout"


def execution_record(row: Mapping[str, Any]) -> ExecutionRecord:
    """A frozen record from a ``.dicts()`` row of ``Execution``."""
    return assemble(ExecutionRecord, {
        "id": int(row["id"]),
        "task_id": row["task_id"],
        "task_name": row["task_name"],
        "module": row["module"],
        "status": _STATUSES[row["status"]],
        "created_at": float(row["created_at"]),
        "attempt": int(row["attempt"]),
        "device_serial": row["device_serial"],
        "agent_uuid": row["agent_uuid"],
        "created_by": row["created_by"] or "",
        "args": _as_list(row["args"]),
        "kwargs": _as_dict(row["kwargs"]),
        "result": row["result"],
        "error": row["error"],
        "traceback": row["traceback"],
        "metadata": _as_dict(row["metadata"]),
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "timeout_s": row["timeout_s"],
    })


_STATUSES = {status.value: status for status in ExecStatus}


def create_execution(
    *,
    task_id: str,
    task_name: str,
    module: str,
    status: ExecStatus = ExecStatus.STARTED,
    created_by: str = "",
    kwargs: dict[str, Any] | None = None,
    args: list[Any] | None = None,
    metadata: dict[str, Any] | None = None,
    device_serial: str | None = None,
    agent_uuid: str | None = None,
    attempt: int = 1,
    timeout_s: float | None = None,
    now: float | None = None,
) -> ExecutionRecord:
    """Record an execution (the engine's attempts, or a system job recording itself).

    Raises:
        ValidationError: a field is malformed or not JSON.
        ConflictError: this (task_id, attempt) is already recorded.
    """
    status = _status(status)
    _text(task_id, "task_id", 64)
    _text(task_name, "task_name", 128)
    _text(module, "module", 64)
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValidationError("attempt must be a positive integer", field="attempt")
    if timeout_s is not None and (not _is_number(timeout_s) or timeout_s <= 0):
        raise ValidationError("timeout_s must be a positive number", field="timeout_s")
    kwargs = _json_dict(kwargs, "kwargs")
    metadata = _json_dict(metadata, "metadata")
    args = list(args) if args is not None else []
    _check_json(args, "args")
    at = clock.now() if now is None else now
    with write_transaction():
        if Execution.select().where(Execution.task_id == task_id,
                                    Execution.attempt == attempt).exists():
            raise ConflictError(f"execution {task_id!r} attempt {attempt} already exists")
        new_id = Execution.insert(
            task_id=task_id, task_name=task_name, module=module, status=status.value,
            attempt=attempt, device_serial=device_serial, agent_uuid=agent_uuid,
            created_by=created_by or "", args=args, kwargs=kwargs, metadata=metadata,
            created_at=at,
            started_at=at if status is ExecStatus.STARTED else None,
            finished_at=at if status.is_terminal else None,
            timeout_s=timeout_s,
        ).execute()
    return get_execution(int(new_id))


def update_execution(
    execution_id: int,
    *,
    status: ExecStatus | None = None,
    result: Any = UNSET,
    error: str | None = None,
    traceback: str | None = None,
    metadata: dict[str, Any] | None = None,
    now: float | None = None,
) -> ExecutionRecord:
    """Change status and/or fields; ``error``/``traceback`` are written when given.

    Raises:
        NotFoundError: no such execution.
        TransitionError: the status change is not allowed (e.g. terminal -> STARTED).
        ValidationError: result or metadata is not JSON.
    """
    new_status = _status(status) if status is not None else None
    if result is not UNSET:
        _check_json(result, "result")
    extra = _json_dict(metadata, "metadata")
    at = clock.now() if now is None else now
    with write_transaction():
        row = _locked_row(execution_id)
        fields: dict[Any, Any] = {}
        current = ExecStatus(row["status"])
        if new_status is not None:
            if new_status not in EXEC_TRANSITIONS[current]:
                raise TransitionError(
                    f"execution {execution_id} cannot go from {current.value} to "
                    f"{new_status.value}"
                )
            fields[Execution.status] = new_status.value
            if new_status is ExecStatus.STARTED and row["started_at"] is None:
                fields[Execution.started_at] = at
            if new_status.is_terminal and row["finished_at"] is None:
                fields[Execution.finished_at] = at
        if result is not UNSET:
            fields[Execution.result] = result
        if error is not None:
            fields[Execution.error] = str(error)
        if traceback is not None:
            fields[Execution.traceback] = str(traceback)
        if extra:
            fields[Execution.metadata] = {**_as_dict(row["metadata"]), **extra}
        if fields:
            Execution.update(fields).where(Execution.id == execution_id).execute()
    return get_execution(execution_id)


def merge_metadata(execution_id: int, metadata: dict[str, Any]) -> None:
    """Shallow-merge ``metadata`` into the row's (cheap progress updates).

    Raises:
        NotFoundError: no such execution.
        ValidationError: metadata is not a JSON object.
    """
    extra = _json_dict(metadata, "metadata")
    if not extra:
        return
    with write_transaction():
        row = _locked_row(execution_id)
        merged = {**_as_dict(row["metadata"]), **extra}
        Execution.update({Execution.metadata: merged}).where(
            Execution.id == execution_id).execute()


def get_execution(execution_id: int) -> ExecutionRecord:
    row = first_dict(Execution.select().where(Execution.id == execution_id))
    if row is None:
        raise NotFoundError(f"no execution {execution_id}")
    return execution_record(row)


def executions_for_task(task_id: str) -> list[ExecutionRecord]:
    """Every attempt of a task, first attempt first."""
    query = Execution.select().where(Execution.task_id == task_id).order_by(Execution.attempt)
    return [execution_record(row) for row in dicts(query)]


def latest_execution_for_task(task_id: str) -> ExecutionRecord:
    row = first_dict(
        Execution.select()
        .where(Execution.task_id == task_id)
        .order_by(Execution.attempt.desc())
    )
    if row is None:
        raise NotFoundError(f"no execution for task {task_id!r}")
    return execution_record(row)


def purge_old_executions(
    *,
    retention_days: int = 30,
    only_completed: bool = True,
    batch_size: int = 5000,
    now: float | None = None,
) -> int:
    """Delete executions created more than ``retention_days`` ago, in batches.

    Each batch is its own (short) transaction, so the writer lock is released
    between batches. ``retention_days <= 0`` disables retention (returns 0).
    With ``only_completed`` only SUCCESS/FAILURE/REVOKED rows are deleted.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError("batch_size must be a positive integer", field="batch_size")
    if retention_days <= 0:
        return 0
    cutoff = (clock.now() if now is None else now) - retention_days * 86400.0
    condition = Execution.created_at < cutoff
    if only_completed:
        condition &= Execution.status.in_([s.value for s in TERMINAL_EXEC_STATUSES])
    total = 0
    while True:
        with write_transaction():
            ids = column(
                Execution.select(Execution.id)
                .where(condition)
                .order_by(Execution.created_at, Execution.id)
                .limit(batch_size)
            )
            if not ids:
                break
            total += Execution.delete().where(Execution.id.in_(ids)).execute()
        if len(ids) < batch_size:
            break
    return total


def sweep_timeouts(
    *, now: float | None = None, default_timeout_s: float = 600, grace_s: float = 60
) -> int:
    """Mark STARTED rows older than their timeout (+ grace) as FAILURE.

    The timeout is the row's ``timeout_s`` or ``default_timeout_s``. A row whose
    task is still running under a live lease is left alone: the engine enforces
    its own timeouts and will record the outcome. Returns how many rows changed.
    """
    if not _is_number(default_timeout_s) or default_timeout_s <= 0:
        raise ValidationError("default_timeout_s must be positive", field="default_timeout_s")
    if not _is_number(grace_s) or grace_s < 0:
        raise ValidationError("grace_s must not be negative", field="grace_s")
    at = clock.now() if now is None else now
    changed = 0
    with write_transaction():
        limit = peewee.fn.COALESCE(Execution.timeout_s, float(default_timeout_s))
        candidates = dicts(
            Execution.select(Execution.id, Execution.task_id, Execution.started_at,
                             Execution.timeout_s, Execution.metadata)
            .where(
                Execution.status == ExecStatus.STARTED.value,
                Execution.started_at < at - float(grace_s),
                Execution.started_at + limit + float(grace_s) < at,
            )
        )
        live = _tasks_with_live_lease([row["task_id"] for row in candidates], at)
        for row in candidates:
            if row["task_id"] in live:
                continue
            timeout = float(row["timeout_s"] or default_timeout_s)
            cutoff = at - timeout - float(grace_s)
            minutes = f"{timeout / 60:g}"
            error = (
                f"Task timeout (exceeded {minutes} minutes, started before "
                f"{clock.iso(cutoff)})"
            )
            meta = {**_as_dict(row["metadata"]), "reason": TIMEOUT_REASON}
            changed += (
                Execution.update(
                    {
                        Execution.status: ExecStatus.FAILURE.value,
                        Execution.error: error,
                        Execution.finished_at: at,
                        Execution.metadata: meta,
                    }
                )
                .where(Execution.id == row["id"], Execution.status == ExecStatus.STARTED.value)
                .execute()
            )
    return changed


# -- internals -------------------------------------------------------------------------
def _as_list(value: Any) -> list[Any]:
    # Rows inserted raw before models.py gave JSON fields callable defaults hold the
    # text "[]"/"{}" as a JSON string: read those as empty.
    return list(value) if isinstance(value, list) else []


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _tasks_with_live_lease(task_ids: list[str], at: float) -> set[str]:
    if not task_ids:
        return set()
    live: set[str] = set()
    for start in range(0, len(task_ids), 500):
        chunk = task_ids[start:start + 500]
        query = Task.select(Task.uid).where(
            Task.uid.in_(chunk),
            unindexed(Task.state) == TaskState.RUNNING.value,
            Task.lease_expires_at >= at,
        )
        live.update(column(query))
    return live


def _locked_row(execution_id: int) -> dict[str, Any]:
    query = Execution.select().where(Execution.id == execution_id)
    row = first_dict(for_update(query))
    if row is None:
        raise NotFoundError(f"no execution {execution_id}")
    return row


def _status(value: ExecStatus | str) -> ExecStatus:
    try:
        return ExecStatus(value.upper() if isinstance(value, str) else value)
    except ValueError:
        raise ValidationError(f"invalid execution status {value!r}", field="status") from None


def _text(value: object, name: str, limit: int) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ValidationError(f"{name} must be text of 1 to {limit} characters", field=name)


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _check_json(value: Any, name: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} is not JSON: {exc}", field=name) from None


def _json_dict(value: dict[str, Any] | None, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValidationError(f"{name} must be a JSON object", field=name)
    _check_json(value, name)
    return dict(value)
