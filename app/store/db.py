"""The database connection: one ``DatabaseProxy`` initialised once at start-up.

SQLite (default) or PostgreSQL (``postgresql://…`` URL, for several workstations
sharing one database). Every model binds to ``database_proxy``.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import unquote, urlparse

import peewee

database_proxy = peewee.DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "foreign_keys": 1,
    "busy_timeout": 10000,
    "cache_size": -16000,  # 16 MB
    "temp_store": "memory",
}


def is_postgres(db: peewee.Database | None = None) -> bool:
    target = db if db is not None else database_proxy.obj
    return isinstance(target, peewee.PostgresqlDatabase)


def open_database(location: str | os.PathLike[str]) -> peewee.Database:
    """Open (creating if needed) the database at a path or URL and bind the proxy.

    A new SQLite file is created with mode 0600 before SQLite touches it, so the
    store is never readable by other users, not even for an instant.
    """
    text = os.fspath(location)
    db: peewee.Database
    if text.startswith(("postgresql://", "postgres://")):
        db = _open_postgres(text)
    else:
        path = Path(text)
        if text != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
            else:
                os.chmod(path, 0o600)
        db = peewee.SqliteDatabase(
            text,
            pragmas=SQLITE_PRAGMAS,
            check_same_thread=False,
            timeout=10,
            # Every transaction takes the write lock when it begins: a deferred
            # transaction that reads and then writes fails at once (no busy wait)
            # when another process committed in between, under WAL.
            lock_type="IMMEDIATE",
        )
    database_proxy.initialize(db)
    db.connect(reuse_if_open=True)
    return db


def _open_postgres(url: str) -> peewee.Database:
    parsed = urlparse(url)
    return peewee.PostgresqlDatabase(
        (parsed.path or "/").lstrip("/") or "postgres",
        user=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else None,
        host=parsed.hostname or "127.0.0.1",
        port=parsed.port or 5432,
    )


def close_database() -> None:
    db = database_proxy.obj
    if db is not None and not db.is_closed():
        db.close()


def sqlite_version() -> str:
    return sqlite3.sqlite_version
