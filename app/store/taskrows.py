"""Shared plumbing of the task modules: row -> record, locked reads, argument checks."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import peewee

from app.core import clock
from app.core.enums import Priority, TaskState
from app.core.errors import ConflictError, NotFoundError, ValidationError
from app.core.records import TaskRecord, assemble
from app.core.targets import Target
from app.store.dialect import for_update
from app.store.models import JsonField, Task
from app.store.rows import first_dict

Row = dict[str, Any]

TASK_FIELDS: list[peewee.Field] = list(Task._meta.sorted_fields)
TASK_TABLE = f'"{Task._meta.table_name}"'
TASK_COLUMNS = ", ".join(f'"{f.column_name}"' for f in TASK_FIELDS)
_NAMES = [f.name for f in TASK_FIELDS]
# Only these columns need converting from their stored form (JSON text, 0/1).
_CONVERT: list[tuple[int, Callable[[Any], Any]]] = [
    (i, f.python_value) for i, f in enumerate(TASK_FIELDS)
    if isinstance(f, JsonField | peewee.BooleanField)
]

MAX_OWNER = 128
MAX_LEASE_S = 24 * 3600.0

_target_cache: dict[tuple[str, str | None], Target] = {}
# Enum lookups by value without the cost of calling the enum class.
_PRIORITIES = {int(p): p for p in Priority}
_STATES = {s.value: s for s in TaskState}


def task_record(row: Mapping[str, Any]) -> TaskRecord:
    """A frozen record from a ``.dicts()`` row of ``Task``."""
    return assemble(TaskRecord, {
        "id": int(row["id"]),
        "uid": row["uid"],
        "kind": row["kind"],
        "payload": dict(row["payload"] or {}),
        "queue": row["queue"],
        "priority": _PRIORITIES[int(row["priority"])],
        "target": stored_target(row["target_kind"], row["target_value"]),
        "state": _STATES[row["state"]],
        "attempts": int(row["attempts"]),
        "max_attempts": int(row["max_attempts"]),
        "timeout_s": float(row["timeout_s"]),
        "created_at": float(row["created_at"]),
        "updated_at": float(row["updated_at"]),
        "source": row["source"],
        "created_by": row["created_by"] or "",
        "not_before": row["not_before"],
        "dedupe_key": row["dedupe_key"],
        "lease_owner": row["lease_owner"],
        "lease_expires_at": row["lease_expires_at"],
        "device_serial": row["device_serial"],
        "agent_uuid": row["agent_uuid"],
        "last_error": row["last_error"],
        "result": row["result"],
        "cancel_requested": bool(row["cancel_requested"]),
        "finished_at": row["finished_at"],
        "progress_percent": row["progress_percent"],
        "progress_message": row["progress_message"],
    })


def read_task_rows(db: peewee.Database, sql: str, params: Sequence[Any]) -> list[Row]:
    """Run raw SQL selecting ``TASK_COLUMNS`` and return rows as dicts, as ``.dicts()``
    would. For hot paths: peewee takes longer to build a query than SQLite to run it."""
    cursor = db.execute_sql(sql, list(params))  # type: ignore[no-untyped-call]
    rows = []
    for raw in cursor.fetchall():
        values = list(raw)
        for i, convert in _CONVERT:
            values[i] = convert(values[i])
        rows.append(dict(zip(_NAMES, values, strict=True)))
    return rows


def insert_task_rows(db: peewee.Database, rows: list[Row], max_params: int, *,
                     returning: bool = False) -> dict[str, int]:
    """Insert many task rows (dicts with the same keys) with multi-row INSERTs.

    Returns:
        uid -> new row id when ``returning`` (the backend must support
        ``RETURNING``), else an empty dict.
    """
    if not rows:
        return {}
    names = list(rows[0])
    fields = [Task._meta.fields[name] for name in names]
    # Only JSON and boolean columns differ from their Python form; peewee's
    # per-value conversion of the rest cost more than the INSERT itself.
    convert = [(i, f.db_value) for i, f in enumerate(fields)
               if isinstance(f, JsonField | peewee.BooleanField)]
    columns = ", ".join(f'"{f.column_name}"' for f in fields)
    one = "(" + ", ".join([db.param] * len(names)) + ")"
    tail = ' RETURNING "id", "uid"' if returning else ""
    per_statement = max(1, max_params // len(names))
    ids: dict[str, int] = {}
    for begin in range(0, len(rows), per_statement):
        chunk = rows[begin:begin + per_statement]
        params: list[Any] = []
        for row in chunk:
            values = [row[name] for name in names]
            for i, to_db in convert:
                values[i] = to_db(values[i])
            params += values
        sql = f"INSERT INTO {TASK_TABLE} ({columns}) VALUES {', '.join([one] * len(chunk))}{tail}"
        cursor = db.execute_sql(sql, params)  # type: ignore[no-untyped-call]
        if returning:
            ids.update((uid, int(new_id)) for new_id, uid in cursor.fetchall())
    return ids


def stored_target(kind: str, value: str | None) -> Target:
    """``Target.from_storage`` with a small cache (selector text is parsed once)."""
    key = (kind, value)
    target = _target_cache.get(key)
    if target is None:
        target = Target.from_storage(kind, value)
        if len(_target_cache) > 4096:
            _target_cache.clear()
        _target_cache[key] = target
    return target


def task_row(uid: str, *, lock: bool = False) -> dict[str, Any]:
    """The task's row as a dict; ``lock`` takes a row lock on PostgreSQL.

    Raises:
        NotFoundError: no task with this uid.
    """
    if not isinstance(uid, str):
        raise NotFoundError(f"no task {uid!r}")
    query = Task.select().where(Task.uid == uid)
    if lock:
        query = for_update(query)
    row = first_dict(query)
    if row is None:
        raise NotFoundError(f"no task {uid!r}")
    return row


def owned_row(uid: str, owner: str, *states: TaskState) -> dict[str, Any]:
    """The locked row of a task this owner holds in one of ``states``.

    Raises:
        NotFoundError: no such task.
        ConflictError: another owner holds it, or it is in another state.
    """
    row = task_row(uid, lock=True)
    state = TaskState(row["state"])
    if state not in states:
        wanted = "/".join(s.value for s in states)
        raise ConflictError(f"task {uid} is {state.value}, not {wanted}")
    if row["lease_owner"] != owner:
        raise ConflictError(f"task {uid} is held by {row['lease_owner']!r}, not {owner!r}")
    return row


def check_owner(owner: str) -> str:
    if not isinstance(owner, str) or not owner.strip() or len(owner) > MAX_OWNER:
        raise ValidationError(f"owner must be text of 1 to {MAX_OWNER} characters",
                              field="owner")
    return owner


def check_lease(lease_s: float) -> float:
    if (
        isinstance(lease_s, bool)
        or not isinstance(lease_s, int | float)
        or not math.isfinite(lease_s)
        or not 0 < lease_s <= MAX_LEASE_S
    ):
        raise ValidationError(f"lease_s must be a number in (0, {MAX_LEASE_S:.0f}]",
                              field="lease_s")
    return float(lease_s)


def when(now: float | None) -> float:
    return clock.now() if now is None else float(now)
