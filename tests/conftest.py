"""Test-wide set-up: safe environment, in-memory keyring, a hang watchdog."""

from __future__ import annotations

import faulthandler
import os
import sys
import threading

import pytest

# Qt without a display; must be set before anything imports PySide6.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Nothing in the tests may start a stray adb server on the default port: adbutils
# would otherwise spawn one by itself when no server answers.
os.environ["ADBUTILS_ADB_PATH"] = "/bin/false"
os.environ.pop("ANDROID_ADB_SERVER_PORT", None)
os.environ.setdefault("LANG", "C.UTF-8")

WATCHDOG_SECONDS = float(os.environ.get("TASKDESK_TEST_WATCHDOG", "1500"))


def pytest_sessionstart(session: pytest.Session) -> None:
    """Kill the run if it hangs: nested Qt loops can block teardown forever, and
    pytest-timeout cancels its timers after the first failure."""

    def watchdog() -> None:
        if done.wait(WATCHDOG_SECONDS):
            return
        sys.stderr.write(f"\n*** test watchdog: no finish after {WATCHDOG_SECONDS:.0f}s\n")
        faulthandler.dump_traceback(all_threads=True)
        sys.stderr.flush()
        os._exit(3)

    done = threading.Event()
    session.config._taskdesk_watchdog_done = done  # type: ignore[attr-defined]
    threading.Thread(target=watchdog, name="test-watchdog", daemon=True).start()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    done = getattr(session.config, "_taskdesk_watchdog_done", None)
    if done is not None:
        done.set()


@pytest.fixture(autouse=True)
def memory_keyring():
    """Every test gets a fresh in-memory keyring; the real one is never touched."""
    import keyring

    from tests.support.memkeyring import MemoryKeyring

    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def data_dir(tmp_path):
    """A private data directory (tests never write to the real home)."""
    path = tmp_path / "data"
    path.mkdir()
    return path
