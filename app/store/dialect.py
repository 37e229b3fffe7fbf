"""Everything the store does differently on SQLite and PostgreSQL, in one place.

The repository modules write portable peewee queries and call these helpers at
the few points where the backends really differ:

- **write transactions**: on SQLite a transaction that reads and then writes
  must take the writer lock up front (``BEGIN IMMEDIATE``); a deferred one can
  fail with "database is locked" (SQLITE_BUSY_SNAPSHOT, which busy_timeout
  does not retry) when another process wrote in between. PostgreSQL takes row
  locks instead;
- **row locks**: ``FOR UPDATE`` / ``FOR UPDATE SKIP LOCKED`` exist only on
  PostgreSQL; on SQLite the writer lock already serialises writers;
- **planner hints**: SQLite's unary ``+`` keeps a term off an index;
- **integer bucketing** for time series (``CAST`` truncates on SQLite but
  rounds on PostgreSQL);
- **migration lock** (an advisory lock, so two workstations starting at once
  do not migrate the same database twice) and **file backup** (SQLite only);
- **bound-parameter limits**, for chunked inserts and ``IN`` lists.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import peewee

from app.core.errors import StorageError
from app.store.db import database_proxy, is_postgres

Q = TypeVar("Q", bound=peewee.Select)

# Any stable 64-bit number; names the advisory lock held while migrating.
_MIGRATION_LOCK_KEY = 0x7A5D_E5C0_0001


def current_db() -> peewee.Database:
    """The open database behind the proxy.

    Raises:
        StorageError: the store has not been opened.
    """
    db = database_proxy.obj
    if db is None:
        raise StorageError("the store is not open")
    return db  # type: ignore[no-any-return]


def write_transaction(db: peewee.Database | None = None) -> Any:
    """A transaction for read-then-write work; a savepoint when already inside one.

    On SQLite the outermost level is ``BEGIN IMMEDIATE`` so the writer lock is
    taken before the first read (see the module docstring).
    """
    target = db if db is not None else current_db()
    if isinstance(target, peewee.SqliteDatabase):
        return target.atomic("IMMEDIATE")
    return target.atomic()


def for_update(query: Q) -> Q:
    """Lock the selected rows until the transaction ends (PostgreSQL only)."""
    if is_postgres(current_db()):
        return query.for_update()
    return query


def skip_locked(query: Q) -> Q:
    """Lock the selected rows, skipping rows another transaction holds (PostgreSQL).

    Used by the claim: two workstations never wait on, or take, the same task.
    """
    if is_postgres(current_db()):
        return query.for_update(skip_locked=True)
    return query


def unindexed(column: Any) -> Any:
    """``column`` in a form the planner will not use an index for (SQLite's unary ``+``).

    For "these ids, if still pending": without statistics SQLite prefers the
    ``state`` index (walking every pending task) over looking up a few ids.
    PostgreSQL plans from statistics and needs no hint.
    """
    if is_postgres(current_db()):
        return column
    return peewee.NodeList((peewee.SQL("+"), column), glue="")


def bucket_index(column: Any, origin: float, size: float) -> Any:
    """SQL for ``floor((column - origin) / size)`` as an integer (column >= origin)."""
    offset = (column - origin) / float(size)
    if is_postgres(current_db()):
        return peewee.fn.FLOOR(offset).cast("BIGINT")
    # Non-negative here, so SQLite's truncating CAST is a floor.
    return offset.cast("INTEGER")


def max_parameters(db: peewee.Database | None = None) -> int:
    """How many bound parameters one statement may carry (kept well below the limit)."""
    target = db if db is not None else current_db()
    if is_postgres(target):
        return 30_000
    # SQLite before 3.32 allowed only 999.
    return 30_000 if sqlite3.sqlite_version_info >= (3, 32, 0) else 900


def sqlite_path(db: peewee.Database) -> Path | None:
    """The file behind a SQLite database (``None`` for PostgreSQL or ``:memory:``)."""
    if not isinstance(db, peewee.SqliteDatabase):
        return None
    name = str(db.database)
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


def backup_sqlite(db: peewee.Database, dest: Path) -> None:
    """Copy a live SQLite database to ``dest`` (mode 0600) with SQLite's backup API,
    which is consistent even with a WAL file beside the database."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(dest, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    target = sqlite3.connect(str(dest))
    try:
        db.connection().backup(target)  # type: ignore[no-untyped-call]
    finally:
        target.close()


@contextlib.contextmanager
def migration_lock(db: peewee.Database) -> Iterator[None]:
    """Serialise migrations between processes.

    PostgreSQL: a session advisory lock. SQLite: nothing here; every step runs
    in a ``BEGIN IMMEDIATE`` transaction (``write_transaction``) and the version
    is re-read inside it.
    """
    if not is_postgres(db):
        yield
        return
    db.execute_sql(  # type: ignore[no-untyped-call]
        "SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK_KEY,))
    try:
        yield
    finally:
        db.execute_sql(  # type: ignore[no-untyped-call]
            "SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK_KEY,))
