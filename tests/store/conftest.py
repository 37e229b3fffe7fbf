"""Store fixtures: a fresh, migrated database per test, on SQLite and PostgreSQL.

``store`` runs each test on a new SQLite file in ``tmp_path`` (copied from a
template migrated once per session, so it is fast) and, when
``TASKDESK_TEST_PG_URL`` is set, again on PostgreSQL: a private database
created for this test session (so parallel runs never see each other) whose
tables are emptied before each test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import peewee
import pytest

from app.store.db import close_database
from app.store.models import ALL_MODELS
from app.store.schema import open_store

PG_URL = os.environ.get("TASKDESK_TEST_PG_URL") or None
BACKENDS = [pytest.param("sqlite", id="sqlite")]
if PG_URL:
    BACKENDS.append(pytest.param("pg", id="pg", marks=pytest.mark.pg))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for every test."""
    path = tmp_path_factory.mktemp("store-template") / "template.db"
    db = open_store(path)
    db.close()  # the last connection checkpoints the WAL into the file
    close_database()
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A private, migrated PostgreSQL database for this session (dropped at the end)."""
    if not PG_URL:
        pytest.skip("TASKDESK_TEST_PG_URL is not set")
    import psycopg2

    name = f"taskdesk_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(PG_URL)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        try:
            url = urlunparse(urlparse(PG_URL)._replace(path=f"/{name}"))
            db = open_store(url)
            db.close()
            close_database()
            yield url
        finally:
            close_database()
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


@pytest.fixture(params=BACKENDS)
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where this test's fresh store lives: a SQLite path or a PostgreSQL URL."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "store.db"
        shutil.copyfile(template, path)
        return str(path)
    url: str = request.getfixturevalue("pg_url")
    _empty_pg_tables(url)
    return url


@pytest.fixture
def store(store_location: str, tmp_path: Path) -> Iterator[peewee.Database]:
    """A fresh, migrated store bound to the models (``database_proxy``)."""
    db = open_store(store_location, backups_dir=tmp_path / "backups")
    yield db
    close_database()


@pytest.fixture
def sqlite_store(tmp_path: Path, sqlite_template: Path) -> Iterator[peewee.Database]:
    """SQLite only, for tests about files (backups, several processes)."""
    path = tmp_path / "store.db"
    shutil.copyfile(sqlite_template, path)
    db = open_store(path, backups_dir=tmp_path / "backups")
    yield db
    close_database()


def _empty_pg_tables(url: str) -> None:
    import psycopg2

    names = [f'"{model._meta.table_name}"' for model in ALL_MODELS
             if model._meta.table_name != "schema_version"]
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            # DELETE is far quicker than TRUNCATE on tables this small.
            for name in names:
                cur.execute(f"DELETE FROM {name}")
    finally:
        conn.close()


@pytest.fixture
def db(store: peewee.Database) -> peewee.Database:
    """``store`` under the name the lock, device and audit tests use."""
    return store
