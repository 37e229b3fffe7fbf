"""The SQL of the hot path (``hotpath``), written once per backend.

Building a statement with peewee costs more than SQLite takes to run it, so the
hot path uses plain SQL text, built here once and cached. Only what really
differs between backends differs:

- the placeholder (``?`` / ``%s``) and row locks (``FOR UPDATE``, PostgreSQL);
- many rows updated with different values: SQLite runs one prepared statement
  per row in-process (``executemany``); PostgreSQL, where every statement is a
  network round trip, gets one ``UPDATE ... FROM (VALUES ...)``;
- the ids of new execution rows come back through ``RETURNING`` (PostgreSQL,
  SQLite 3.35+), or, on an older SQLite, by a lookup of their unique
  ``(task_id, attempt)``;
- SQLite's planner without statistics would walk the ``state`` index for
  "these ids, if still claimed": a unary ``+`` keeps ``state`` off the index
  (as ``dialect.unindexed`` does for peewee queries).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import peewee

from app.core.enums import TaskState
from app.core.errors import ConflictError
from app.store.db import is_postgres
from app.store.dialect import max_parameters
from app.store.models import Execution, JsonField
from app.store.taskrows import TASK_COLUMNS, TASK_FIELDS, TASK_TABLE, Row

SQLITE_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)

EXEC_TABLE = f'"{Execution._meta.table_name}"'
INSERT_COLUMNS = ("task_id", "task_name", "module", "status", "attempt", "device_serial",
                  "agent_uuid", "created_by", "args", "kwargs", "metadata", "created_at",
                  "started_at", "finished_at", "timeout_s")
_TASK_ID, _ATTEMPT = INSERT_COLUMNS.index("task_id"), INSERT_COLUMNS.index("attempt")
FAIL_TASK_COLUMNS = ("state", "not_before", "finished_at", "device_serial", "agent_uuid",
                     "updated_at", "lease_owner", "lease_expires_at", "last_error")

_TASK_NAMES = [f.name for f in TASK_FIELDS]
_PAYLOAD = _TASK_NAMES.index("payload")
# Columns stored in another form than Python's (JSON text, 0/1 on SQLite).
_TASK_CONVERT: list[tuple[int, Callable[[Any], Any]]] = [
    (i, f.python_value) for i, f in enumerate(TASK_FIELDS)
    if isinstance(f, JsonField | peewee.BooleanField)
]
decode_json = Execution.metadata.python_value



@dataclass(frozen=True)
class RowUpdate:
    """An UPDATE of one row per parameter list: ``sets`` then ``keys`` values.

    Columns are ``(name, PostgreSQL type)``; ``keep`` names columns written only
    when the new value is not NULL (``COALESCE(new, old)``).
    """

    table: str
    sets: tuple[tuple[str, str], ...]
    keys: tuple[tuple[str, str], ...]
    keep: frozenset[str] = frozenset()

    def sqlite(self, p: str) -> str:
        sets = ", ".join(f'"{c}" = COALESCE({p}, "{c}")' if c in self.keep else f'"{c}" = {p}'
                         for c, _ in self.sets)
        keys = " AND ".join(f'"{c}" = {p}' for c, _ in self.keys)
        return f"UPDATE {self.table} SET {sets} WHERE {keys}"

    def postgres(self, n: int) -> str:
        columns = [*self.sets, *self.keys]
        names = ", ".join(f'"v{i}"' for i in range(len(columns)))
        row = "(" + ", ".join(f"CAST(%s AS {kind})" for _, kind in columns) + ")"
        sets = ", ".join(
            f'"{c}" = COALESCE(v."v{i}", {self.table}."{c}")' if c in self.keep
            else f'"{c}" = v."v{i}"' for i, (c, _) in enumerate(self.sets))
        offset = len(self.sets)
        keys = " AND ".join(f'{self.table}."{c}" = v."v{offset + i}"'
                            for i, (c, _) in enumerate(self.keys))
        return (f"UPDATE {self.table} SET {sets} FROM (VALUES {', '.join([row] * n)}) "
                f"AS v({names}) WHERE {keys}")


_TEXT, _REAL, _ID = "TEXT", "DOUBLE PRECISION", "BIGINT"
_BY_ID = (("id", _ID),)
_BY_ID_AND_STATE = (("id", _ID), ("state", _TEXT))


class Sql:
    """The hot path's statements for one backend; ``Sql.of(db)`` is cached."""

    complete_execution = RowUpdate(EXEC_TABLE, (
        ("status", _TEXT), ("finished_at", _REAL), ("result", _TEXT), ("metadata", _TEXT),
    ), _BY_ID, keep=frozenset({"metadata"}))
    complete_task = RowUpdate(TASK_TABLE, (
        ("state", _TEXT), ("result", _TEXT), ("finished_at", _REAL), ("updated_at", _REAL),
        ("lease_owner", _TEXT), ("lease_expires_at", _REAL),
    ), _BY_ID_AND_STATE)
    fail_execution = RowUpdate(EXEC_TABLE, (
        ("status", _TEXT), ("finished_at", _REAL), ("error", _TEXT), ("traceback", _TEXT),
        ("metadata", _TEXT),
    ), _BY_ID, keep=frozenset({"traceback", "metadata"}))
    fail_task = RowUpdate(TASK_TABLE, tuple(
        (c, _REAL if c.endswith("_at") or c == "not_before" else _TEXT)
        for c in FAIL_TASK_COLUMNS), _BY_ID_AND_STATE)

    _cache: dict[tuple[str, str, bool], Sql] = {}

    def __init__(self, param: str, postgres: bool, returning: bool) -> None:
        self.p = param
        self.postgres = postgres
        self.returning = returning
        self._sqlite_updates: dict[RowUpdate, str] = {}

    @classmethod
    def of(cls, db: peewee.Database) -> Sql:
        postgres = is_postgres(db)
        key = (type(db).__name__, str(db.param), postgres or SQLITE_RETURNING)
        sql = cls._cache.get(key)
        if sql is None:
            sql = cls._cache[key] = cls(key[1], postgres, key[2])
        return sql

    # -- reads ---------------------------------------------------------------------------
    def read_tasks(self, db: peewee.Database, uids: Sequence[str], *,
                   with_last_attempt: bool = False) -> dict[str, Row]:
        """The task rows of ``uids`` by uid (locked on PostgreSQL); with the highest
        execution number of each as ``last_attempt`` and the stored payload text as
        ``payload_json`` when asked."""
        if not uids:
            return {}
        cursor = db.execute_sql(  # type: ignore[no-untyped-call]
            _read_tasks_sql(self.p, self.postgres, with_last_attempt, len(uids)), list(uids))
        names = [*_TASK_NAMES, "last_attempt"] if with_last_attempt else _TASK_NAMES
        rows: dict[str, Row] = {}
        for raw in cursor.fetchall():
            values = list(raw)
            for i, convert in _TASK_CONVERT:
                values[i] = convert(values[i])
            row = dict(zip(names, values, strict=True))
            if with_last_attempt:  # a start copies the payload text into the execution
                row["payload_json"] = raw[_PAYLOAD]
            rows[row["uid"]] = row
        return rows

    def read_running_tasks(self, db: peewee.Database, uids: Sequence[str]) -> dict[str, Row]:
        """What a finish must check of these task rows, and what may change while a
        task runs (progress, a cancel request), by uid (locked on PostgreSQL)."""
        if not uids:
            return {}
        cursor = db.execute_sql(  # type: ignore[no-untyped-call]
            _read_running_sql(self.p, self.postgres, len(uids)), list(uids))
        return {uid: {"id": int(i), "uid": uid, "state": state, "lease_owner": owner,
                      "attempts": int(attempts), "cancel_requested": bool(cancel),
                      "progress_percent": percent, "progress_message": message}
                for i, uid, state, owner, attempts, cancel, percent, message
                in cursor.fetchall()}

    def read_executions(self, db: peewee.Database, ids: Sequence[int]) -> dict[int, Row]:
        """What a finish needs of these execution rows, by id (locked on PostgreSQL)."""
        if not ids:
            return {}
        cursor = db.execute_sql(  # type: ignore[no-untyped-call]
            _read_executions_sql(self.p, self.postgres, len(ids)), list(ids))
        # The metadata stays text: decoded only when something is merged into it.
        return {int(i): {"id": int(i), "task_id": task_id, "status": status,
                         "finished_at": finished_at, "metadata_json": metadata}
                for i, task_id, status, finished_at, metadata in cursor.fetchall()}

    # -- writes --------------------------------------------------------------------------
    def start_tasks(self, db: peewee.Database, ids: Sequence[int], at: float) -> None:
        """claimed -> running for these task ids, attempts + 1 (progress cleared)."""
        cursor = db.execute_sql(  # type: ignore[no-untyped-call]
            _start_sql(self.p, self.postgres, len(ids)),
            [TaskState.RUNNING.value, at, *ids, TaskState.CLAIMED.value])
        _check_changed(cursor.rowcount, len(ids))

    def claim_started(self, db: peewee.Database, ids: Sequence[int], owner: str,
                      expires: float, at: float) -> None:
        """pending -> running for these host task ids under ``owner``'s lease, attempts
        + 1 (the claim that starts host tasks at once)."""
        cursor = db.execute_sql(  # type: ignore[no-untyped-call]
            _claim_start_sql(self.p, self.postgres, len(ids)),
            [TaskState.RUNNING.value, owner, expires, at, *ids, TaskState.PENDING.value])
        _check_changed(cursor.rowcount, len(ids), "another claim took some of these tasks; "
                       "try again")

    def last_attempts(self, db: peewee.Database, uids: Sequence[str]) -> dict[str, int]:
        """The highest execution number of each of these tasks that has executions."""
        cursor = db.execute_sql(  # type: ignore[no-untyped-call]
            f'SELECT "task_id", MAX("attempt") FROM {EXEC_TABLE} '
            f'WHERE "task_id" IN ({", ".join([self.p] * len(uids))}) GROUP BY "task_id"',
            list(uids))
        return {task_id: int(attempt) for task_id, attempt in cursor.fetchall()}

    def insert_executions(self, db: peewee.Database,
                          rows: Sequence[Sequence[Any]]) -> dict[str, int]:
        """Insert execution rows, given as values in ``INSERT_COLUMNS`` order (JSON as
        text), one per task; returns task uid -> new execution id."""
        per_statement = max(1, max_parameters(db) // len(INSERT_COLUMNS))
        ids: dict[str, int] = {}
        for begin in range(0, len(rows), per_statement):
            chunk = rows[begin:begin + per_statement]
            cursor = db.execute_sql(  # type: ignore[no-untyped-call]
                _insert_sql(self.p, self.returning, len(chunk)),
                [value for row in chunk for value in row])
            if self.returning:
                ids.update((task_id, int(new_id)) for new_id, task_id in cursor.fetchall())
            else:
                ids.update(self._new_ids(db, chunk))
        return ids

    def update_rows(self, db: peewee.Database, update: RowUpdate,
                    rows: Sequence[Sequence[Any]], *,
                    conflict: str = "tasks changed meanwhile; try again") -> None:
        """Run ``update`` once per parameter list, in one statement on PostgreSQL.

        Raises:
            ConflictError: (``conflict``) some row did not match its keys; the caller's
                transaction is undone.
        """
        if not rows:
            return
        if self.postgres:
            cursor = db.execute_sql(  # type: ignore[no-untyped-call]
                _postgres_update(update, len(rows)), [v for row in rows for v in row])
            changed = cursor.rowcount
        else:
            statement = self._sqlite_updates.get(update)
            if statement is None:
                statement = self._sqlite_updates[update] = update.sqlite(self.p)
            cursor = db.cursor()  # type: ignore[no-untyped-call]
            cursor.executemany(statement, rows)
            changed = cursor.rowcount
        _check_changed(changed, len(rows), conflict)

    def _new_ids(self, db: peewee.Database, rows: Sequence[Sequence[Any]]) -> dict[str, int]:
        """Without RETURNING: find the new rows by their unique (task_id, attempt)."""
        wanted = {(row[_TASK_ID], row[_ATTEMPT]) for row in rows}
        marks = ", ".join([self.p] * len(rows))
        cursor = db.execute_sql(  # type: ignore[no-untyped-call]
            f'SELECT "id", "task_id", "attempt" FROM {EXEC_TABLE} WHERE "task_id" IN ({marks})',
            [row[_TASK_ID] for row in rows])
        return {task_id: int(new_id) for new_id, task_id, attempt in cursor.fetchall()
                if (task_id, attempt) in wanted}


def _check_changed(changed: int, expected: int,
                   conflict: str = "tasks changed meanwhile; try again") -> None:
    # The rows are locked (PostgreSQL) or the writer lock is held (SQLite), so this
    # cannot happen; refuse the whole batch rather than record part of it.
    if changed != expected:
        raise ConflictError(conflict)


# The statements, by backend and number of rows (cached: the engine's batches come in
# a few sizes again and again).
@functools.lru_cache(maxsize=256)
def _read_tasks_sql(p: str, postgres: bool, last_attempt: bool, n: int) -> str:
    extra = (f', (SELECT MAX(e."attempt") FROM {EXEC_TABLE} AS e '
             f'WHERE e."task_id" = {TASK_TABLE}."uid")') if last_attempt else ""
    lock = ' ORDER BY "id" FOR UPDATE' if postgres else ""
    return (f'SELECT {TASK_COLUMNS}{extra} FROM {TASK_TABLE} '
            f'WHERE "uid" IN ({", ".join([p] * n)}){lock}')


@functools.lru_cache(maxsize=256)
def _read_running_sql(p: str, postgres: bool, n: int) -> str:
    lock = ' ORDER BY "id" FOR UPDATE' if postgres else ""
    return ('SELECT "id", "uid", "state", "lease_owner", "attempts", "cancel_requested", '
            f'"progress_percent", "progress_message" FROM {TASK_TABLE} '
            f'WHERE "uid" IN ({", ".join([p] * n)}){lock}')


@functools.lru_cache(maxsize=256)
def _read_executions_sql(p: str, postgres: bool, n: int) -> str:
    lock = ' ORDER BY "id" FOR UPDATE' if postgres else ""
    return (f'SELECT "id", "task_id", "status", "finished_at", "metadata" FROM {EXEC_TABLE} '
            f'WHERE "id" IN ({", ".join([p] * n)}){lock}')


@functools.lru_cache(maxsize=256)
def _start_sql(p: str, postgres: bool, n: int) -> str:
    state = '"state"' if postgres else '+"state"'
    return (f'UPDATE {TASK_TABLE} SET "state" = {p}, "attempts" = "attempts" + 1, '
            f'"updated_at" = {p}, "progress_percent" = NULL, "progress_message" = NULL '
            f'WHERE "id" IN ({", ".join([p] * n)}) AND {state} = {p}')


@functools.lru_cache(maxsize=256)
def _claim_start_sql(p: str, postgres: bool, n: int) -> str:
    state = '"state"' if postgres else '+"state"'
    return (f'UPDATE {TASK_TABLE} SET "state" = {p}, "attempts" = "attempts" + 1, '
            f'"lease_owner" = {p}, "lease_expires_at" = {p}, "updated_at" = {p}, '
            f'"device_serial" = NULL, "agent_uuid" = NULL, "progress_percent" = NULL, '
            f'"progress_message" = NULL WHERE "id" IN ({", ".join([p] * n)}) AND {state} = {p}')


@functools.lru_cache(maxsize=256)
def _insert_sql(p: str, returning: bool, n: int) -> str:
    row = "(" + ", ".join([p] * len(INSERT_COLUMNS)) + ")"
    columns = ", ".join(f'"{c}"' for c in INSERT_COLUMNS)
    tail = ' RETURNING "id", "task_id"' if returning else ""
    return f"INSERT INTO {EXEC_TABLE} ({columns}) VALUES {', '.join([row] * n)}{tail}"


@functools.lru_cache(maxsize=64)
def _postgres_update(update: RowUpdate, n: int) -> str:
    return update.postgres(n)
