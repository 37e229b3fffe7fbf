"""Schema versions and migrations: what protects operators' databases across upgrades."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import peewee
import pytest

from app.core.enums import TaskState
from app.core.errors import SchemaTooNewError, StorageError
from app.store import executions, tasks
from app.store.db import close_database, open_database
from app.store.models import ALL_MODELS, SchemaVersion
from app.store.schema import SCHEMA_VERSION, STEPS, migrate, open_store, schema_version
from tests.store.helpers import spec
from tests.store.make_fixture_db import restore

PAST_VERSIONS = list(range(1, SCHEMA_VERSION + 1))


@pytest.fixture(autouse=True)
def _close_after() -> object:
    yield None
    close_database()


def _copy_fixture(version: int, tmp_path: Path) -> Path:
    """A database file restored from the checked-in fixture of ``version``."""
    return restore(version, tmp_path / f"copy_v{version}.db")


def _set_version(path: Path, version: int) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version (version, applied_at, app_version) "
                     "VALUES (?, 0, 'test')", (version,))
    conn.close()


def test_new_database_is_created_at_the_current_version(tmp_path: Path) -> None:
    db = open_store(tmp_path / "new.db")
    assert schema_version(db) == SCHEMA_VERSION
    assert {m._meta.table_name for m in ALL_MODELS} <= set(db.get_tables())
    assert not (tmp_path / "backups").exists()  # nothing to back up for a new file


def test_database_file_is_private(tmp_path: Path) -> None:
    open_store(tmp_path / "private.db")
    assert (tmp_path / "private.db").stat().st_mode & 0o077 == 0


def test_migrating_twice_changes_nothing(tmp_path: Path) -> None:
    db = open_store(tmp_path / "again.db")
    assert migrate(db, tmp_path / "backups") == SCHEMA_VERSION
    assert SchemaVersion.select().count() == SCHEMA_VERSION
    assert not (tmp_path / "backups").exists()


@pytest.mark.parametrize("version", PAST_VERSIONS)
def test_every_past_schema_opens_and_keeps_its_data(version: int, tmp_path: Path) -> None:
    path = _copy_fixture(version, tmp_path)
    db = open_store(path, backups_dir=tmp_path / "backups")
    assert schema_version(db) == SCHEMA_VERSION
    pending = tasks.get_task("fixture-task-1")
    assert pending.state is TaskState.PENDING and pending.payload == {"command": "echo 1"}
    assert tasks.get_task("fixture-task-2").lease_owner == "engine-fixture"
    done = executions.latest_execution_for_task("fixture-task-3")
    assert done.result == {"exit_code": 0} and done.metadata == {"progress_percent": 50}
    # The migrated store is fully usable: new work can be queued and claimed.
    new = tasks.enqueue(spec())
    claimed = tasks.claim("engine-a", [tasks.Slot("SIM-02")], lease_s=30)
    assert [t.uid for t in claimed["SIM-02"]] in (["fixture-task-1"], [new.uid])


def test_a_newer_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = _copy_fixture(1, tmp_path)
    _set_version(path, 999)
    before = path.read_bytes()
    with pytest.raises(SchemaTooNewError, match="999"):
        open_store(path, backups_dir=tmp_path / "backups")
    assert not (tmp_path / "backups").exists()
    close_database()
    assert sqlite3.connect(path).execute("SELECT MAX(version) FROM schema_version"
                                         ).fetchone() == (999,)
    assert len(path.read_bytes()) == len(before)


def test_an_older_database_is_backed_up_before_the_steps_run(tmp_path: Path) -> None:
    path = _copy_fixture(1, tmp_path)
    _set_version(path, 0)  # pretend it predates step 1; step 1 is idempotent
    db = open_store(path, backups_dir=tmp_path / "backups")
    assert schema_version(db) == SCHEMA_VERSION
    backups = list((tmp_path / "backups").glob("taskdesk-v0-*.db"))
    assert len(backups) == 1
    assert backups[0].stat().st_mode & 0o077 == 0
    copy = sqlite3.connect(backups[0])
    assert copy.execute("SELECT MAX(version) FROM schema_version").fetchone() == (0,)
    assert copy.execute("SELECT COUNT(*) FROM task").fetchone() == (4,)
    copy.close()


def test_the_step_ladder_runs_in_order_each_step_with_its_version(tmp_path: Path) -> None:
    path = _copy_fixture(1, tmp_path)
    db = open_database(path)
    ran: list[tuple[int, int | None]] = []

    def step(version: int):  # a step that records what version it saw
        def run(d: peewee.Database) -> None:
            ran.append((version, schema_version(d)))
            d.execute_sql(f"CREATE TABLE extra_{version} (id INTEGER PRIMARY KEY)")
        return run

    ladder = {**STEPS, 2: step(2), 3: step(3)}
    assert migrate(db, tmp_path / "backups", steps=ladder, target=3) == 3
    assert ran == [(2, 1), (3, 2)]
    assert {"extra_2", "extra_3"} <= set(db.get_tables())
    assert [p.name.split("-")[1] for p in (tmp_path / "backups").iterdir()] == ["v1"]
    # Once there, the normal build refuses it as too new.
    with pytest.raises(SchemaTooNewError):
        migrate(db, tmp_path / "backups")


def test_a_failing_step_leaves_the_previous_version_intact(tmp_path: Path) -> None:
    path = _copy_fixture(1, tmp_path)
    db = open_database(path)

    def good(d: peewee.Database) -> None:
        d.execute_sql("CREATE TABLE extra_good (id INTEGER PRIMARY KEY)")

    def bad(d: peewee.Database) -> None:
        d.execute_sql("CREATE TABLE extra_bad (id INTEGER PRIMARY KEY)")
        raise RuntimeError("step 3 is broken")

    with pytest.raises(RuntimeError, match="broken"):
        migrate(db, tmp_path / "backups", steps={**STEPS, 2: good, 3: bad}, target=3)
    assert schema_version(db) == 2  # step 2 committed, step 3 rolled back entirely
    assert "extra_good" in db.get_tables() and "extra_bad" not in db.get_tables()


def test_a_missing_step_is_refused_before_anything_changes(tmp_path: Path) -> None:
    path = _copy_fixture(1, tmp_path)
    db = open_database(path)
    with pytest.raises(StorageError, match="no migration step"):
        migrate(db, tmp_path / "backups", steps=STEPS, target=2)
    assert schema_version(db) == 1
    assert not (tmp_path / "backups").exists()


def test_schema_version_of_an_empty_database_is_none(tmp_path: Path) -> None:
    db = open_database(tmp_path / "empty.db")
    assert schema_version(db) is None


def test_migrate_works_on_a_database_the_models_are_not_bound_to(tmp_path: Path) -> None:
    bound = open_store(tmp_path / "bound.db")
    other = peewee.SqliteDatabase(str(tmp_path / "other.db"))
    assert migrate(other, tmp_path / "backups") == SCHEMA_VERSION
    assert "task" in other.get_tables() and schema_version(other) == SCHEMA_VERSION
    other.close()
    assert schema_version(bound) == SCHEMA_VERSION


def test_postgres_store_reaches_the_current_version(store: peewee.Database) -> None:
    """Runs on every backend the ``store`` fixture offers (PostgreSQL when configured)."""
    assert schema_version(store) == SCHEMA_VERSION
    assert migrate(store, None) == SCHEMA_VERSION


def test_models_match_the_checked_in_schema_of_this_version(tmp_path: Path) -> None:
    """Changing a table or index in models.py without a new schema version (and a
    migration step) would leave existing databases behind: compare the DDL of a
    fresh database with the checked-in database of the current version."""

    def ddl(path: Path) -> set[tuple[str, str, str]]:
        conn = sqlite3.connect(path)
        try:
            return {(kind, name, " ".join(str(sql).split())) for kind, name, sql in conn.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")}
        finally:
            conn.close()

    open_store(tmp_path / "fresh.db").close()
    close_database()
    assert ddl(tmp_path / "fresh.db") == ddl(restore(SCHEMA_VERSION, tmp_path / "fixture.db")), (
        "models.py changed: bump SCHEMA_VERSION, add a migration step, and check in "
        "a fixture of the previous version (tests/store/make_fixture_db.py)")
