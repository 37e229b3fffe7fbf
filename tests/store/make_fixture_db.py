"""Write ``tests/store/data/schema_v{N}.sql``: a small database at the current schema,
as the SQL text that recreates it (reviewable in a diff; no binary file in git).

Run it once per released schema version, *before* bumping ``SCHEMA_VERSION``,
and check the file in; ``test_schema.py`` restores it into a database file and
proves every past version still opens and migrates::

    .venv/bin/python -m tests.store.make_fixture_db

The content is deterministic (fixed ids, times and uids) and touches the
tables a migration is most likely to change: a queue, tasks in several states,
their executions, a lock and a setting.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from pathlib import Path

from app.core.enums import ExecStatus, TaskState
from app.store.db import close_database
from app.store.models import Execution, Lock, Queue, SchemaVersion, Setting, Task
from app.store.schema import SCHEMA_VERSION, open_store

DATA = Path(__file__).resolve().parent / "data"
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def fixture_path(version: int = SCHEMA_VERSION) -> Path:
    """The checked-in SQL text of the fixture of schema ``version``."""
    return DATA / f"schema_v{version}.sql"


def restore(version: int, path: Path) -> Path:
    """Recreate the fixture database of schema ``version`` at ``path``."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(fixture_path(version).read_text(encoding="utf-8"))
    finally:
        conn.close()
    return path


def build(path: Path) -> None:
    if path.exists():
        path.unlink()
    db = open_store(path, backups_dir=path.parent / "backups-unused")
    with db.atomic():
        Queue.create(name="default", paused=False, concurrency=0, created_at=T0)
        Queue.create(name="slow", paused=True, concurrency=2, created_at=T0)
        states = [TaskState.PENDING, TaskState.RUNNING, TaskState.SUCCEEDED, TaskState.DEAD]
        for n, state in enumerate(states, start=1):
            Task.create(
                id=n, uid=f"fixture-task-{n}", kind="adb.shell", payload={"command": f"echo {n}"},
                queue="default" if n % 2 else "slow", priority=n % 4, target_kind="any",
                state=state.value, attempts=0 if state is TaskState.PENDING else 1,
                max_attempts=3 if state is not TaskState.DEAD else 1, timeout_s=60.0,
                source="cli", created_by="fixture", created_at=T0 + n, updated_at=T0 + n,
                lease_owner="engine-fixture" if state is TaskState.RUNNING else None,
                lease_expires_at=T0 + 100 if state is TaskState.RUNNING else None,
                device_serial="SIM-01" if state is not TaskState.PENDING else None,
                finished_at=T0 + 50 if state.is_terminal else None,
            )
        statuses = {2: ExecStatus.STARTED, 3: ExecStatus.SUCCESS, 4: ExecStatus.FAILURE}
        for n, status in statuses.items():
            Execution.create(
                id=n, task_id=f"fixture-task-{n}", task_name="adb.shell", module="default",
                status=status.value, attempt=1, device_serial="SIM-01", created_by="fixture",
                kwargs={"command": f"echo {n}"}, metadata={"progress_percent": 50},
                result={"exit_code": 0} if status is ExecStatus.SUCCESS else None,
                error="boom" if status is ExecStatus.FAILURE else None,
                created_at=T0 + n, started_at=T0 + n,
                finished_at=None if status is ExecStatus.STARTED else T0 + 50, timeout_s=60.0,
            )
        Lock.create(name="capture:serial=SIM-01", owner="fixture-token", holder_kind="task",
                    acquired_at=T0, expires_at=T0 + 3600, heartbeat_at=T0)
        Setting.create(key="history.retention_days", value=30, updated_at=T0)
        SchemaVersion.update(applied_at=T0).execute()
    db.close()
    close_database()


def main() -> int:
    path = fixture_path()
    with tempfile.TemporaryDirectory() as tmp:
        built = Path(tmp) / "fixture.db"
        build(built)
        conn = sqlite3.connect(built)
        try:
            path.write_text("\n".join(conn.iterdump()) + "\n", encoding="utf-8")
        finally:
            conn.close()
    print(f"wrote {path} ({path.stat().st_size} bytes, schema v{SCHEMA_VERSION})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
