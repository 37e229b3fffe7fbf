"""The store thread: calls queued together commit together, each isolated; reads that
need no commit are answered without waiting for one."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.errors import StorageError
from app.engine.storethread import StoreThread
from app.store import audit
from app.store.models import AuditLog


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StoreThread]:
    thread = StoreThread(tmp_path / "store.sqlite")
    thread.start()
    yield thread
    thread.stop()


def _hold(store: StoreThread) -> threading.Event:
    """Keep the store thread busy until the returned event is set, so that the calls
    submitted meanwhile reach it as one group."""
    gate, entered = threading.Event(), threading.Event()

    def wait() -> None:
        entered.set()
        gate.wait(10)

    store.submit(wait)
    assert entered.wait(10)
    return gate


def _slow_write() -> str:
    audit.audit("tester", "slow.write", "x")
    time.sleep(0.5)
    return "written"


def _audit_count() -> int:
    return int(AuditLog.select().count())


def test_a_read_at_the_head_of_a_group_is_answered_before_the_group_commits(
        store: StoreThread) -> None:
    gate = _hold(store)
    read = store.submit_read(_audit_count)
    write = store.submit(_slow_write)
    gate.set()
    assert read.result(timeout=10) == 0
    assert not write.done()  # still sleeping inside the group: the read did not wait
    assert write.result(timeout=10) == "written"


def test_a_read_behind_a_write_of_its_group_waits_for_the_commit_and_sees_it(
        store: StoreThread) -> None:
    gate = _hold(store)
    write = store.submit(_slow_write)
    read = store.submit_read(_audit_count)
    gate.set()
    assert write.result(timeout=10) == "written"
    assert read.result(timeout=10) == 1


def test_a_failing_call_of_a_group_undoes_only_itself(store: StoreThread) -> None:
    def failing_write() -> None:
        audit.audit("tester", "doomed", "y")
        raise ValueError("refused")

    gate = _hold(store)
    good = store.submit(audit.audit, "tester", "kept", "z")
    bad = store.submit(failing_write)
    gate.set()
    good.result(timeout=10)
    with pytest.raises(ValueError, match="refused"):
        bad.result(timeout=10)
    actions = store.submit_read(lambda: [r.action for r in AuditLog.select()]).result(10)
    assert actions == ["kept"]


def test_calls_on_a_stopped_store_fail_with_a_clear_error(tmp_path: Path) -> None:
    idle = StoreThread(tmp_path / "never.sqlite")
    for submit in (idle.submit, idle.submit_read):
        with pytest.raises(StorageError, match="not running"):
            submit(_audit_count).result(timeout=1)
