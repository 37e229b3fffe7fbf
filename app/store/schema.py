"""Schema versions and migrations.

The database records every applied version in ``schema_version`` (one row per
step; the current version is the highest). ``migrate`` brings a database to
``SCHEMA_VERSION``:

- a new database runs every step from 1;
- an older SQLite file is first copied to
  ``backups/taskdesk-v{old}-{timestamp}.db`` (the operator can always go back);
- each step runs in its own transaction together with its version row, so a
  failing step leaves the database at the previous version, untouched;
- a database written by a newer TaskDesk is refused (``SchemaTooNewError``)
  before anything is changed.

To add version N: write ``_step_N(db)``, add it to ``STEPS``, bump
``SCHEMA_VERSION``, and check in ``tests/store/data/schema_v{N-1}.sql`` made by
``tests/store/make_fixture_db.py`` at the previous version.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import peewee

from app.core import clock
from app.core.errors import SchemaTooNewError, StorageError
from app.store import dialect
from app.store.db import database_proxy, open_database
from app.store.models import ALL_MODELS, SchemaVersion

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
APP_VERSION = "0.1.0"

Step = Callable[[peewee.Database], None]


def _step_1(db: peewee.Database) -> None:
    """Version 1: every table and index of app/store/models.py."""
    db.create_tables(list(ALL_MODELS), safe=True)


STEPS: dict[int, Step] = {1: _step_1}


def schema_version(db: peewee.Database) -> int | None:
    """The database's schema version, or ``None`` for a database never migrated."""
    if SchemaVersion._meta.table_name not in db.get_tables():
        return None
    with _models_bound_to(db):
        top = SchemaVersion.select(peewee.fn.MAX(SchemaVersion.version)).scalar()
    return int(top) if top is not None else None


def migrate(
    db: peewee.Database,
    backups_dir: Path | None,
    *,
    steps: Mapping[int, Step] | None = None,
    target: int | None = None,
) -> int:
    """Create or upgrade the schema; returns the version reached.

    Args:
        db: an open database (SQLite or PostgreSQL).
        backups_dir: where to copy an older SQLite file before upgrading; ``None``
            means a ``backups`` directory beside the file.
        steps: the migration steps by version (tests inject a ladder; default ``STEPS``).
        target: the version to reach (default ``SCHEMA_VERSION``).

    Raises:
        SchemaTooNewError: the database comes from a newer TaskDesk.
        StorageError: a step is missing, or the backup could not be written.
    """
    ladder = dict(STEPS if steps is None else steps)
    goal = SCHEMA_VERSION if target is None else target
    with _models_bound_to(db), dialect.migration_lock(db):
        found = schema_version(db)
        current = found or 0
        if current > goal:
            raise SchemaTooNewError(
                f"the database is at schema version {current}, newer than this TaskDesk "
                f"understands ({goal}); use a newer TaskDesk or another data directory"
            )
        if current == goal:
            return current
        missing = [v for v in range(current + 1, goal + 1) if v not in ladder]
        if missing:
            raise StorageError(f"no migration step for schema version(s) {missing}")
        if found is not None:  # an existing database: keep a copy first
            _backup(db, current, backups_dir)
        for version in range(current + 1, goal + 1):
            _apply(db, version, ladder[version])
    return goal


def open_store(location: str | os.PathLike[str], backups_dir: Path | None = None
               ) -> peewee.Database:
    """Open the database at a path or URL, bind the models, and migrate it."""
    with warnings.catch_warnings():
        # db.py passes PostgreSQL "autorollback" for peewee 3; peewee 4 always
        # autocommits and warns that the option is obsolete. Harmless either way.
        warnings.filterwarnings("ignore", message=".*autorollback", category=DeprecationWarning)
        db = open_database(location)
    try:
        migrate(db, backups_dir)
    except BaseException:
        db.close()
        raise
    return db


# -- internals -------------------------------------------------------------------------
def _apply(db: peewee.Database, version: int, step: Step) -> None:
    with dialect.write_transaction(db):
        SchemaVersion.create_table(safe=True)
        # Re-read inside the transaction: another process may have just applied it.
        done = SchemaVersion.get_or_none(SchemaVersion.version == version)
        if done is not None:
            return
        log.info("migrating the database to schema version %d", version)
        step(db)
        SchemaVersion.create(version=version, applied_at=clock.now(), app_version=APP_VERSION)


def _backup(db: peewee.Database, version: int, backups_dir: Path | None) -> Path | None:
    path = dialect.sqlite_path(db)
    if path is None:
        return None  # PostgreSQL: the operator's own backups apply.
    folder = backups_dir if backups_dir is not None else path.parent / "backups"
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    dest = folder / f"taskdesk-v{version}-{stamp}.db"
    counter = 1
    while dest.exists():
        dest = folder / f"taskdesk-v{version}-{stamp}-{counter}.db"
        counter += 1
    try:
        dialect.backup_sqlite(db, dest)
    except OSError as exc:
        raise StorageError(f"could not back up the database before migrating: {exc}") from exc
    log.info("database backed up to %s before migrating from version %d", dest, version)
    return dest


@contextlib.contextmanager
def _models_bound_to(db: peewee.Database) -> Iterator[None]:
    """Run the block with the models bound to ``db``.

    ``migrate`` accepts any open database; normally it is the one behind the
    proxy and this does nothing.
    """
    if database_proxy.obj is db:
        yield
        return
    with db.bind_ctx(list(ALL_MODELS)):
        yield
