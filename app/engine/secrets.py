"""Secrets (API token, LLM key) behind one small interface over ``keyring``.

Secrets live in the OS keyring under the service name ``taskdesk``. Where no
secure backend exists (the ``fail`` or ``null`` backend, ``keyrings.alt``'s
plaintext files, a chainer with nothing to chain) or the keyring fails
(locked, no D-Bus, init error), a secret is kept in this process's memory for
the session only, and ``status()`` says so for the UI. Never plaintext on disk,
never in the database, never in a log line: only secret *names* are logged.

Keyring calls may block (Secret Service over D-Bus, unlock prompts), so the
async methods run them in a worker thread; the ``*_sync`` variants serve the CLI.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass

import keyring
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

from app.core.errors import ValidationError

log = logging.getLogger(__name__)

SERVICE = "taskdesk"
MAX_NAME = 128
MAX_VALUE = 64 * 1024
# Backends that keep nothing (fail, null) or keep it in plaintext (keyrings.alt).
INSECURE_MODULES = ("keyring.backends.fail", "keyring.backends.null", "keyrings.alt")


@dataclass(frozen=True)
class SecretStatus:
    """Where secrets go, in words an operator can act on."""

    persistent: bool
    backend: str
    message: str


def describe_backend(backend: KeyringBackend) -> str:
    """``Name (module.Class)`` of a backend; a chainer lists what it chains."""
    cls = type(backend)
    name = getattr(backend, "name", cls.__name__)
    text = f"{name} ({cls.__module__}.{cls.__qualname__})"
    chained = _chained(backend)
    if chained is not None:
        inner = ", ".join(describe_backend(b) for b in chained) or "nothing"
        text += f" chaining [{inner}]"
    return text


def backend_is_secure(backend: KeyringBackend) -> bool:
    """True unless the backend stores nothing or stores plaintext."""
    chained = _chained(backend)
    if chained is not None:
        return any(backend_is_secure(b) for b in chained)
    module = type(backend).__module__
    return not any(module == m or module.startswith(m + ".") for m in INSECURE_MODULES)


def _chained(backend: KeyringBackend) -> list[KeyringBackend] | None:
    from keyring.backends.chainer import ChainerBackend

    if isinstance(backend, ChainerBackend):
        return list(backend.backends)
    return None


class SecretStore:
    """Get, set and delete named secrets; one instance per application.

    Args:
        service: keyring service name.
        backend: a fixed backend; by default the process-wide ``keyring.get_keyring()``.
    """

    def __init__(self, service: str = SERVICE, backend: KeyringBackend | None = None) -> None:
        self._service = service
        self._fixed_backend = backend
        self._session: dict[str, str] = {}
        self._failure: str | None = None
        self._lock = threading.Lock()

    # -- what the UI shows ------------------------------------------------------------
    def backend_description(self) -> str:
        return describe_backend(self._backend())

    def is_secure(self) -> bool:
        return backend_is_secure(self._backend())

    @property
    def persistent(self) -> bool:
        """False when secrets set now would be lost at exit."""
        return self.is_secure() and self._failure is None

    def status(self) -> SecretStatus:
        backend = self.backend_description()
        if not self.is_secure():
            message = (
                f"No secure keyring is available ({backend}). Secrets are kept in memory "
                "for this session only and must be entered again after a restart."
            )
        elif self._failure is not None:
            message = (
                f"The keyring failed ({self._failure}). Secrets set since are kept in "
                "memory for this session only."
            )
        else:
            message = f"Secrets are stored in the system keyring: {backend}."
        return SecretStatus(persistent=self.persistent, backend=backend, message=message)

    # -- async API (event loop) -------------------------------------------------------
    async def get(self, name: str) -> str | None:
        return await asyncio.to_thread(self.get_sync, name)

    async def set(self, name: str, value: str) -> SecretStatus:
        return await asyncio.to_thread(self.set_sync, name, value)

    async def delete(self, name: str) -> bool:
        return await asyncio.to_thread(self.delete_sync, name)

    # -- sync API (CLI, worker threads) -----------------------------------------------
    def get_sync(self, name: str) -> str | None:
        """The secret, or ``None`` when it is not set (or the keyring cannot say)."""
        name = _validate_name(name)
        with self._lock:
            if name in self._session:
                return self._session[name]
        backend = self._backend()
        if not backend_is_secure(backend):
            return None
        try:
            value = backend.get_password(self._service, name)
        except Exception as exc:  # any backend fault: report it, keep running
            self._note_failure("read", name, exc)
            return None
        return value if isinstance(value, str) else None

    def set_sync(self, name: str, value: str) -> SecretStatus:
        """Store a secret: in the keyring when possible, else for this session only."""
        name = _validate_name(name)
        if not isinstance(value, str) or not value:
            raise ValidationError("a secret must be non-empty text (use delete)", field=name)
        if len(value) > MAX_VALUE:
            raise ValidationError(f"a secret may hold at most {MAX_VALUE} characters",
                                  field=name)
        backend = self._backend()
        if backend_is_secure(backend):
            try:
                backend.set_password(self._service, name, value)
            except Exception as exc:  # fall back to the session
                self._note_failure("store", name, exc)
            else:
                with self._lock:
                    self._session.pop(name, None)
                    self._failure = None
                return self.status()
        with self._lock:
            self._session[name] = value
        log.info("secret %r kept in memory for this session only", name)
        return self.status()

    def delete_sync(self, name: str) -> bool:
        """Forget a secret everywhere; True if one existed."""
        name = _validate_name(name)
        with self._lock:
            existed = self._session.pop(name, None) is not None
        backend = self._backend()
        if not backend_is_secure(backend):
            return existed
        try:
            backend.delete_password(self._service, name)
        except PasswordDeleteError:
            return existed  # not in the keyring
        except Exception as exc:  # report it; the session copy is gone
            self._note_failure("delete", name, exc)
            return existed
        return True

    # -- internals --------------------------------------------------------------------
    def _backend(self) -> KeyringBackend:
        if self._fixed_backend is not None:
            return self._fixed_backend
        return keyring.get_keyring()

    def _note_failure(self, action: str, name: str, exc: BaseException) -> None:
        # The exception text of keyring backends never carries the secret value.
        reason = f"{type(exc).__name__}: {exc}".strip().rstrip(":.")
        with self._lock:
            self._failure = reason
        log.warning("keyring could not %s secret %r: %s", action, name, reason)


def _validate_name(name: str) -> str:
    if (
        not isinstance(name, str)
        or not 0 < len(name) <= MAX_NAME
        or not name.isprintable()
        or name != name.strip()
    ):
        raise ValidationError(f"invalid secret name {name!r}", field="name")
    return name
