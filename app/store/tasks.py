"""Queued tasks: enqueue, look up, list, and every state change.

This is the module the engine, API and CLI import. Enqueueing and queries are
defined here; the claim lives in ``app.store.claim`` and the life of a claimed
task (start, renew, complete, fail, cancel, reap...) in
``app.store.lifecycle``; both are re-exported so callers need only
``from app.store import tasks``.

All functions are synchronous, run on the store thread, work alone or inside
an outer transaction (savepoints), and return frozen ``TaskRecord``s.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import peewee

from app.core.enums import TERMINAL_TASK_STATES, Priority, TaskState
from app.core.errors import ConflictError, ValidationError
from app.core.ids import new_task_uid
from app.core.records import TaskRecord
from app.core.taskspec import TaskSpec
from app.store.claim import HOST_KEY, Slot, claim, claim_and_start
from app.store.dialect import current_db, max_parameters, write_transaction
from app.store.hotsql import Sql
from app.store.lifecycle import (
    LEASE_EXPIRED_ERROR,
    LEASE_EXPIRED_REASON,
    complete,
    fail,
    interrupt,
    reap_expired,
    release,
    renew_leases,
    request_cancel,
    revoke,
    start,
)
from app.store.models import Queue, Task
from app.store.rows import column, dicts, tuples
from app.store.taskrows import (
    TASK_COLUMNS,
    TASK_TABLE,
    check_owner,
    insert_task_rows,
    read_task_rows,
    task_record,
    task_row,
    when,
)

__all__ = [
    "HOST_KEY", "LEASE_EXPIRED_ERROR", "LEASE_EXPIRED_REASON", "Slot", "claim",
    "claim_and_start", "complete", "count_by_state", "enqueue", "enqueue_many", "fail",
    "get_task", "interrupt",
    "list_tasks", "pending_wakeup_hint", "purge_old_tasks", "reap_expired", "release",
    "renew_leases", "request_cancel", "revoke", "running_for_owner", "set_priority",
    "set_progress", "start",
]

UID_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
MAX_LIST = 100_000
MAX_PROGRESS_MESSAGE = 256
_LOOKUP_CHUNK = 500
# The columns a new task row leaves to their defaults (all NULL), for its record.
_UNSET_COLUMNS: dict[str, Any] = dict.fromkeys((
    "lease_owner", "lease_expires_at", "device_serial", "agent_uuid", "last_error", "result",
    "finished_at", "progress_percent", "progress_message"))


def enqueue(spec: TaskSpec, *, now: float | None = None) -> TaskRecord:
    """Store a new pending task.

    Raises:
        ValidationError: the spec breaks a rule (nothing is stored).
        ConflictError: a task with this uid already exists.
    """
    return enqueue_many([spec], now=now)[0]


def enqueue_many(specs: Sequence[TaskSpec], *, now: float | None = None) -> list[TaskRecord]:
    """Store many tasks at once: all of them or, on any error, none.

    Raises:
        ValidationError: a spec breaks a rule; the message names its position.
        ConflictError: a uid is repeated in the batch or already exists.
    """
    at = when(now)
    rows = []
    for position, spec in enumerate(specs):
        try:
            rows.append(_row_for(spec, at))
        except ValidationError as exc:
            prefix = f"task {position + 1}: " if len(specs) > 1 else ""
            raise ValidationError(prefix + exc.message, field=exc.field) from None
    uids = [row["uid"] for row in rows]
    if len(set(uids)) != len(uids):
        raise ConflictError("the batch repeats a task id")
    if not rows:
        return []
    db = current_db()
    with write_transaction(db):
        existing = _existing_uids(db, uids)
        if existing:
            raise ConflictError(f"task id(s) already exist: {', '.join(sorted(existing)[:5])}")
        for name in sorted({row["queue"] for row in rows}):
            Queue.insert(name=name, paused=False, concurrency=0,
                         created_at=at).on_conflict_ignore().execute()
        returning = Sql.of(db).returning
        try:
            ids = insert_task_rows(db, rows, max_parameters(db), returning=returning)
        except peewee.IntegrityError as exc:  # a concurrent insert of the same uid
            raise ConflictError(f"task id already exists: {exc}") from None
        if not returning:  # an old SQLite: read the rows back for their ids
            return [task_record(row) for row in _rows_in_order(db, uids)]
    return [task_record({**_UNSET_COLUMNS, **row, "id": ids[row["uid"]]}) for row in rows]


def get_task(uid: str) -> TaskRecord:
    """Raises NotFoundError when there is no such task."""
    return task_record(task_row(uid))


def list_tasks(
    *,
    states: Iterable[TaskState] | None = None,
    queue: str | None = None,
    kind: str | None = None,
    limit: int = 200,
    after_id: int | None = None,
) -> list[TaskRecord]:
    """Tasks in id order (oldest first), keyset-paged by ``after_id``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
        raise ValidationError(f"limit must be from 1 to {MAX_LIST}", field="limit")
    query = Task.select()
    if states is not None:
        values = [_state(s).value for s in states]
        if not values:
            return []
        query = query.where(Task.state.in_(values))
    if queue is not None:
        query = query.where(Task.queue == queue)
    if kind is not None:
        query = query.where(Task.kind == kind)
    if after_id is not None:
        query = query.where(Task.id > after_id)
    query = query.order_by(Task.id).limit(limit)
    return [task_record(row) for row in dicts(query)]


def count_by_state(queue: str | None = None) -> dict[TaskState, int]:
    """How many tasks are in each state (every state present, zero if none)."""
    query = Task.select(Task.state, peewee.fn.COUNT(Task.id)).group_by(Task.state)
    if queue is not None:
        query = query.where(Task.queue == queue)
    counts = {state: 0 for state in TaskState}
    for state, n in tuples(query):
        counts[TaskState(state)] = int(n)
    return counts


def set_priority(uid: str, priority: Priority) -> TaskRecord:
    """Re-prioritise a task that has not started (pending or claimed).

    Raises:
        ValidationError: not a priority. ConflictError: the task already runs or ended.
    """
    value = Priority.parse(priority)
    with write_transaction():
        row = task_row(uid, lock=True)
        if row["state"] not in (TaskState.PENDING.value, TaskState.CLAIMED.value):
            raise ConflictError(f"task {uid} is {row['state']}: only waiting tasks can be "
                                "re-prioritised")
        Task.update({Task.priority: int(value)}).where(Task.id == row["id"]).execute()
        row["priority"] = int(value)
    return task_record(row)


def set_progress(uid: str, percent: int | None, message: str | None) -> None:
    """Show progress of a running task (ignored once it stopped running).

    Long messages are cut to 256 characters.

    Raises:
        ValidationError: percent outside 0..100. NotFoundError: no such task.
    """
    if percent is not None and (
        isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100
    ):
        raise ValidationError("percent must be an integer from 0 to 100", field="percent")
    if message is not None and not isinstance(message, str):
        raise ValidationError("message must be text", field="message")
    text = message[:MAX_PROGRESS_MESSAGE] if message is not None else None
    with write_transaction():
        changed = (
            Task.update({Task.progress_percent: percent, Task.progress_message: text})
            .where(Task.uid == uid, Task.state == TaskState.RUNNING.value)
            .execute()
        )
        if not changed:
            task_row(uid)  # raises NotFoundError when the task does not exist


def running_for_owner(owner: str) -> list[TaskRecord]:
    """Tasks ``owner`` holds a lease on (claimed or running), oldest first."""
    check_owner(owner)
    query = (
        Task.select()
        .where(Task.lease_owner == owner,
               Task.state.in_([TaskState.CLAIMED.value, TaskState.RUNNING.value]))
        .order_by(Task.id)
    )
    return [task_record(row) for row in dicts(query)]


def pending_wakeup_hint(now: float | None = None) -> float | None:
    """The earliest future ``not_before`` among pending tasks (the dispatcher's timer)."""
    at = when(now)
    db = current_db()
    p = Sql.of(db).p
    # Raw SQL: the dispatcher asks after every claim, and peewee took 40 times longer
    # to build this query than the (indexed) database to answer it.
    cursor = db.execute_sql(  # type: ignore[no-untyped-call]
        f'SELECT MIN("not_before") FROM {TASK_TABLE} WHERE "state" = {p} '
        f'AND "not_before" > {p} AND "cancel_requested" = {p}',
        [TaskState.PENDING.value, at, False])
    value = cursor.fetchone()[0]
    return float(value) if value is not None else None


def purge_old_tasks(*, retention_days: int = 30, batch_size: int = 5000,
                    now: float | None = None) -> int:
    """Delete finished tasks (terminal states) that ended more than ``retention_days``
    ago, in batches; ``retention_days <= 0`` disables it. Their executions are
    kept (the history has its own retention)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError("batch_size must be a positive integer", field="batch_size")
    if retention_days <= 0:
        return 0
    cutoff = when(now) - retention_days * 86400.0
    condition = Task.state.in_([s.value for s in TERMINAL_TASK_STATES]) & (
        Task.finished_at < cutoff)
    total = 0
    while True:
        with write_transaction():
            ids = column(Task.select(Task.id).where(condition).order_by(Task.id)
                         .limit(batch_size))
            if ids:
                total += Task.delete().where(Task.id.in_(ids)).execute()
        if len(ids) < batch_size:
            return total


# -- internals -------------------------------------------------------------------------
def _row_for(spec: TaskSpec, at: float) -> dict[str, Any]:
    if not isinstance(spec, TaskSpec):
        raise ValidationError("a task must be a TaskSpec")
    spec = spec.validated()
    uid = spec.uid
    if uid is None:
        uid = new_task_uid()
    elif not isinstance(uid, str) or not UID_RE.match(uid):
        raise ValidationError(f"invalid task id {uid!r}: 1-64 letters, digits, _ . : -",
                              field="id")
    not_before = spec.not_before
    if not_before is not None and (
        isinstance(not_before, bool) or not isinstance(not_before, int | float)
        or not math.isfinite(not_before)
    ):
        raise ValidationError("not_before must be a time", field="not_before")
    return {
        "uid": uid,
        "kind": spec.kind,
        "payload": spec.payload,
        "queue": spec.queue,
        "priority": int(spec.priority),
        "target_kind": spec.target.kind.value,
        "target_value": spec.target.storage_value,
        "state": TaskState.PENDING.value,
        "not_before": float(not_before) if not_before is not None else None,
        "attempts": 0,
        "max_attempts": spec.max_attempts,
        "timeout_s": float(spec.timeout_s),
        "dedupe_key": spec.dedupe_key,
        "source": spec.source,
        "created_by": spec.created_by,
        "created_at": at,
        "updated_at": at,
        "cancel_requested": False,
    }


def _existing_uids(db: peewee.Database, uids: list[str]) -> set[str]:
    found: set[str] = set()
    for begin in range(0, len(uids), _LOOKUP_CHUNK):
        chunk = uids[begin:begin + _LOOKUP_CHUNK]
        marks = ", ".join([db.param] * len(chunk))
        cursor = db.execute_sql(  # type: ignore[no-untyped-call]
            f'SELECT "uid" FROM {TASK_TABLE} WHERE "uid" IN ({marks})', chunk)
        found.update(uid for (uid,) in cursor.fetchall())
    return found


def _rows_in_order(db: peewee.Database, uids: list[str]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for begin in range(0, len(uids), _LOOKUP_CHUNK):
        chunk = uids[begin:begin + _LOOKUP_CHUNK]
        marks = ", ".join([db.param] * len(chunk))
        sql = f'SELECT {TASK_COLUMNS} FROM {TASK_TABLE} WHERE "uid" IN ({marks})'
        for row in read_task_rows(db, sql, chunk):
            out[row["uid"]] = row
    return [out[uid] for uid in uids]


def _state(value: TaskState | str) -> TaskState:
    try:
        return TaskState(value)
    except ValueError:
        raise ValidationError(f"invalid task state {value!r}", field="state") from None

