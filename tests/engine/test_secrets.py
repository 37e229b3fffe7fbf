"""SecretStore: keyring when secure, session-only memory otherwise; values never logged."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null
from keyring.errors import KeyringLocked, PasswordDeleteError

from app.core.errors import ValidationError
from app.engine.secrets import SERVICE, SecretStore, backend_is_secure, describe_backend

SECRET = "tok-9f2c-very-secret"
ROOT = Path(__file__).resolve().parents[2]


class LockableKeyring(KeyringBackend):
    """A real backend that behaves like a locked Secret Service collection."""

    priority = -1  # type: ignore[assignment]  # never auto-selected by keyring

    def __init__(self) -> None:
        super().__init__()
        self.locked = True
        self.store: dict[tuple[str, str], str] = {}

    def _check(self) -> None:
        if self.locked:
            raise KeyringLocked("Failed to unlock the collection!")

    def get_password(self, service: str, username: str) -> str | None:
        self._check()
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self._check()
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self._check()
        if self.store.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


class PlaintextFileKeyring(KeyringBackend):
    """Stands for keyrings.alt's plaintext file backend (not installed here)."""

    priority = -1  # type: ignore[assignment]  # never auto-selected by keyring

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise AssertionError("an insecure backend must never receive a secret")

    def delete_password(self, service: str, username: str) -> None:
        raise PasswordDeleteError(username)


PlaintextFileKeyring.__module__ = "keyrings.alt.file"


def test_a_secure_keyring_keeps_the_secret_under_the_taskdesk_service(memory_keyring) -> None:
    store = SecretStore()
    assert store.is_secure() and store.persistent
    status = store.set_sync("api.token", SECRET)
    assert status.persistent and "MemoryKeyring" in status.backend
    assert memory_keyring.get_password(SERVICE, "api.token") == SECRET
    # A new session (another SecretStore) reads it back from the keyring.
    assert SecretStore().get_sync("api.token") == SECRET
    assert store.delete_sync("api.token")
    assert store.get_sync("api.token") is None
    assert not store.delete_sync("api.token")


def test_the_async_api_runs_off_the_loop(memory_keyring) -> None:
    seen_threads: list[str] = []

    class Recording(type(memory_keyring)):  # type: ignore[misc]
        priority = -1  # never auto-selected by keyring

        def set_password(self, service: str, username: str, password: str) -> None:
            seen_threads.append(threading.current_thread().name)
            super().set_password(service, username, password)

    store = SecretStore(backend=Recording())

    async def scenario() -> tuple[str | None, bool, str | None]:
        status = await store.set("llm.api_key", SECRET)
        value = await store.get("llm.api_key")
        deleted = await store.delete("llm.api_key")
        return value, status.persistent and deleted, await store.get("llm.api_key")

    assert asyncio.run(scenario()) == (SECRET, True, None)
    assert seen_threads and seen_threads[0] != threading.main_thread().name


def test_without_a_secure_keyring_secrets_live_for_the_session_only() -> None:
    keyring.set_keyring(fail.Keyring())  # what CI and headless machines have
    store = SecretStore()
    assert not store.is_secure() and not store.persistent
    status = store.set_sync("api.token", SECRET)
    assert not status.persistent
    assert "session only" in status.message and "fail" in status.backend
    assert store.get_sync("api.token") == SECRET
    assert SecretStore().get_sync("api.token") is None  # a restart forgets it
    assert store.delete_sync("api.token")
    assert store.get_sync("api.token") is None


@pytest.mark.parametrize(
    ("backend", "secure"),
    [
        (fail.Keyring(), False),
        (null.Keyring(), False),
        (PlaintextFileKeyring(), False),
        (LockableKeyring(), True),
    ],
)
def test_which_backends_count_as_secure(backend: KeyringBackend, secure: bool) -> None:
    assert backend_is_secure(backend) is secure
    assert type(backend).__name__ in describe_backend(backend)


def _chainer_of(*chained: KeyringBackend) -> chainer.ChainerBackend:
    """A chainer over fixed backends (the real one chains whatever is installed)."""

    class FixedChainer(chainer.ChainerBackend):
        backends = list(chained)  # type: ignore[assignment]

    return FixedChainer()


def test_a_chainer_is_as_secure_as_what_it_chains() -> None:
    # A chainer with nothing to chain silently stores nothing: not secure.
    empty = _chainer_of()
    assert not backend_is_secure(empty)
    assert "chaining [nothing]" in describe_backend(empty)
    assert not SecretStore(backend=empty).is_secure()
    assert not backend_is_secure(_chainer_of(PlaintextFileKeyring(), null.Keyring()))
    mixed = _chainer_of(PlaintextFileKeyring(), LockableKeyring())
    assert backend_is_secure(mixed)
    assert "LockableKeyring" in describe_backend(mixed)


def test_an_insecure_backend_never_receives_the_secret() -> None:
    store = SecretStore(backend=PlaintextFileKeyring())
    assert not store.set_sync("api.token", SECRET).persistent
    assert store.get_sync("api.token") == SECRET


def test_a_locked_keyring_falls_back_to_the_session_and_says_so(caplog) -> None:
    backend = LockableKeyring()
    store = SecretStore(backend=backend)
    caplog.set_level(logging.DEBUG)
    assert store.is_secure()
    status = store.set_sync("api.token", SECRET)
    assert not status.persistent and not store.persistent
    assert "KeyringLocked" in status.message and "session only" in status.message
    assert backend.store == {}
    assert store.get_sync("api.token") == SECRET
    # Unlocked later: the next set persists and the warning clears.
    backend.locked = False
    assert store.set_sync("api.token", SECRET + "-2").persistent
    assert backend.store == {(SERVICE, "api.token"): SECRET + "-2"}
    assert store.get_sync("api.token") == SECRET + "-2"
    assert "system keyring" in store.status().message
    # Locked again: reads and deletes report, never raise.
    backend.locked = True
    assert SecretStore(backend=backend).get_sync("api.token") is None
    assert not SecretStore(backend=backend).delete_sync("api.token")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "api.token" in logged and "KeyringLocked" in logged
    assert SECRET not in logged


@pytest.mark.parametrize(
    ("name", "value"),
    [("", SECRET), (" api.token", SECRET), ("a\nb", SECRET), ("x" * 129, SECRET),
     ("api.token", ""), ("api.token", None), ("api.token", "v" * 70_000)],
)
def test_bad_names_and_values_are_refused(memory_keyring, name, value) -> None:
    with pytest.raises(ValidationError):
        SecretStore().set_sync(name, value)
    assert memory_keyring._store == {}


SECRET_SERVICE_SCRIPT = f"""
from app.engine.secrets import SecretStore
store = SecretStore()
status = store.set_sync("api.token", {SECRET!r})
print("secure", store.is_secure())
print("persistent", status.persistent)
print("message", status.message)
print("same-session", store.get_sync("api.token") == {SECRET!r})
print("new-session", SecretStore().get_sync("api.token") == {SECRET!r})
"""


def _run_under_secret_service(home: Path, daemon: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.SecretService.Keyring"}
    script = f"{daemon} >/dev/null; exec '{sys.executable}' -c \"$TD_SCRIPT\""
    proc = subprocess.run(
        ["dbus-run-session", "--", "sh", "-c", script],
        env={**env, "TD_SCRIPT": SECRET_SERVICE_SCRIPT}, input="test-password",
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert SECRET not in proc.stderr
    return dict(line.split(" ", 1) for line in proc.stdout.splitlines())


needs_secret_service = pytest.mark.skipif(
    not (shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon")),
    reason="needs dbus-run-session and gnome-keyring (apt-get install gnome-keyring)",
)


@needs_secret_service
def test_real_secret_service_stores_encrypted_and_reads_back(tmp_path) -> None:
    out = _run_under_secret_service(
        tmp_path, "gnome-keyring-daemon --unlock --components=secrets"
    )
    assert out == {"secure": "True", "persistent": "True", "message": out["message"],
                   "same-session": "True", "new-session": "True"}
    assert "SecretService" in out["message"]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files, "gnome-keyring wrote no keyring file"
    assert not [p for p in files if SECRET.encode() in p.read_bytes()]


@needs_secret_service
def test_real_secret_service_that_cannot_prompt_falls_back_to_the_session(tmp_path) -> None:
    # No unlocked collection and no display for the unlock prompt: InitError.
    out = _run_under_secret_service(tmp_path, "gnome-keyring-daemon --start --components=secrets")
    assert (out["secure"], out["persistent"]) == ("True", "False")
    assert "session only" in out["message"] and "InitError" in out["message"]
    assert (out["same-session"], out["new-session"]) == ("True", "False")
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
