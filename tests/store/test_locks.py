"""Locks: one owner per name, expiry takeover, owner-only release, audited force release."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from app.core.enums import HolderKind
from app.core.errors import ValidationError
from app.store import locks
from app.store.audit import list_audit
from app.store.db import close_database, open_database
from app.store.models import ALL_MODELS, Lock

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000.0




def test_a_free_lock_is_taken_and_a_held_one_refused(db) -> None:
    got = locks.acquire("capture", "task-1", ttl_s=60, note="run 1", now=T0)
    assert got is not None
    assert (got.owner, got.holder_kind, got.note) == ("task-1", HolderKind.TASK, "run 1")
    assert (got.acquired_at, got.heartbeat_at, got.expires_at) == (T0, T0, T0 + 60)
    assert locks.acquire("capture", "task-2", now=T0 + 30) is None
    assert locks.get_lock("capture", now=T0 + 30).owner == "task-1"


def test_the_same_owner_refreshes_without_losing_acquired_at(db) -> None:
    locks.acquire("capture", "op", holder_kind=HolderKind.OPERATOR, ttl_s=60, now=T0)
    again = locks.acquire("capture", "op", holder_kind=HolderKind.OPERATOR, ttl_s=600,
                          now=T0 + 50)
    assert again is not None
    assert again.acquired_at == T0
    assert (again.heartbeat_at, again.expires_at) == (T0 + 50, T0 + 650)


def test_an_expired_lock_is_taken_over(db) -> None:
    locks.acquire("capture", "dead-worker", ttl_s=10, now=T0)
    assert locks.get_lock("capture", now=T0 + 10) is None  # expiry instant is free
    got = locks.acquire("capture", "worker-2", ttl_s=10, now=T0 + 10)
    assert got is not None and got.owner == "worker-2" and got.acquired_at == T0 + 10


def test_renew_extends_only_our_live_lease(db) -> None:
    locks.acquire("capture", "a", ttl_s=10, now=T0)
    assert locks.renew("capture", "a", ttl_s=30, now=T0 + 5)
    lock = locks.get_lock("capture", now=T0 + 6)
    assert (lock.heartbeat_at, lock.expires_at) == (T0 + 5, T0 + 35)
    assert not locks.renew("capture", "b", ttl_s=30, now=T0 + 6)
    # A lapsed lease is not revived: the holder must know it lost the lock.
    assert not locks.renew("capture", "a", ttl_s=30, now=T0 + 35)
    assert not locks.renew("missing", "a", now=T0)


def test_only_the_owner_releases(db) -> None:
    locks.acquire("capture", "a", now=T0)
    assert not locks.release("capture", "b")
    assert locks.get_lock("capture", now=T0) is not None
    assert locks.release("capture", "a")
    assert locks.get_lock("capture", now=T0) is None
    assert not locks.release("capture", "a")


def test_a_late_release_never_frees_the_new_holders_lock(db) -> None:
    locks.acquire("capture:serial=ABC", "slow-run", ttl_s=10, now=T0)
    locks.acquire("capture:serial=ABC", "next-run", ttl_s=10, now=T0 + 11)
    assert not locks.release("capture:serial=ABC", "slow-run")
    assert locks.get_lock("capture:serial=ABC", now=T0 + 12).owner == "next-run"


def test_force_release_frees_any_holder_and_is_audited(db) -> None:
    locks.acquire("capture", "task-9", ttl_s=100, now=T0)
    freed = locks.force_release("capture", actor="alice", reason="stuck phone", now=T0 + 1)
    assert freed is not None and freed.owner == "task-9"
    assert locks.get_lock("capture", now=T0 + 1) is None
    [entry] = list_audit(action="lock.force_release")
    assert (entry.actor, entry.subject, entry.at) == ("alice", "capture", T0 + 1)
    assert entry.detail["owner"] == "task-9"
    assert entry.detail["reason"] == "stuck phone"
    assert entry.detail["expired"] is False
    # Nothing to release: nothing audited.
    assert locks.force_release("capture", actor="alice", now=T0 + 2) is None
    assert len(list_audit(action="lock.force_release")) == 1
    with pytest.raises(ValidationError):
        locks.force_release("capture", actor=" ")


def test_listing_and_purging_expired_locks(db) -> None:
    locks.acquire("a", "o", ttl_s=10, now=T0)
    locks.acquire("b", "o", ttl_s=100, now=T0)
    assert [lk.name for lk in locks.list_locks(now=T0 + 50)] == ["b"]
    assert [lk.name for lk in locks.list_locks(include_expired=True, now=T0 + 50)] == ["a", "b"]
    assert locks.purge_expired(now=T0 + 50) == 1
    assert [lk.name for lk in locks.list_locks(include_expired=True, now=T0 + 50)] == ["b"]


def test_lock_name_follows_the_reference_parameter_rule() -> None:
    assert locks.lock_name("capture") == "capture"
    assert locks.lock_name("capture", "serial", "ABC") == "capture:serial=ABC"
    long_value = "x" * 201
    digest = hashlib.md5(long_value.encode()).hexdigest()[:16]
    assert locks.lock_name("capture", "url", long_value) == f"capture:url={digest}"
    assert locks.lock_name("capture", "url", "y" * 200) == "capture:url=" + "y" * 200
    with pytest.raises(ValidationError):
        locks.lock_name("capture", "serial", None)
    with pytest.raises(ValidationError):
        locks.lock_name("capture", None, "ABC")


@pytest.mark.parametrize("name", ["", " capture", "capture ", "a\nb", "x" * 256])
def test_invalid_names_change_nothing(db, name: str) -> None:
    with pytest.raises(ValidationError):
        locks.acquire(name, "owner", now=T0)
    assert Lock.select().count() == 0


@pytest.mark.parametrize(
    ("owner", "ttl", "kind"),
    [("", 10, "task"), ("o", 0, "task"), ("o", -1, "task"), ("o", float("nan"), "task"),
     ("o", True, "task"), ("o", 10, "nobody")],
)
def test_invalid_owner_ttl_or_holder_change_nothing(db, owner: str, ttl: float, kind) -> None:
    with pytest.raises(ValidationError):
        locks.acquire("capture", owner, ttl_s=ttl, holder_kind=kind, now=T0)
    assert Lock.select().count() == 0


RACER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from app.store import locks
    from app.store.db import open_database
    db_path, go, me = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    rounds, now = int(sys.argv[4]), float(sys.argv[5])
    open_database(db_path)
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.001)
    won = []
    for i in range(rounds):
        for prefix in ("fresh", "stale"):
            if locks.acquire(f"{prefix}:{i}", me, ttl_s=60, now=now) is not None:
                won.append(f"{prefix}:{i}")
    print("won", " ".join(won), flush=True)
    """
)


def test_processes_racing_on_one_database_never_both_win(tmp_path, store_location: str) -> None:
    """Every name ends with exactly one winner, for free names and expired ones alike
    (four processes on one SQLite file, or on one PostgreSQL database)."""
    location = store_location
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        db = open_database(location)
    db.drop_tables(ALL_MODELS)
    db.create_tables(ALL_MODELS)
    rounds = 40
    for i in range(rounds):  # expired leftovers of a crashed holder
        locks.acquire(f"stale:{i}", "crashed", ttl_s=1, now=T0 - 100)
    close_database()
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, location, str(go), f"p{n}", str(rounds), str(T0)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for n in range(4)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    go.touch()
    winners: dict[str, list[str]] = {}
    for n, proc in enumerate(procs):
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        names = out.split()[1:]
        for name in names:
            winners.setdefault(name, []).append(f"p{n}")
    expected = {f"{p}:{i}" for p in ("fresh", "stale") for i in range(rounds)}
    assert set(winners) == expected
    assert all(len(owners) == 1 for owners in winners.values()), winners
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        db = open_database(location)
    stored = {lk.name: lk.owner for lk in locks.list_locks(now=T0)}
    assert stored == {name: owners[0] for name, owners in winners.items()}
    close_database()
