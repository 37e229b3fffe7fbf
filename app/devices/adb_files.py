"""File transfer over the adb sync protocol (adbutils ``Sync``), cancellable.

adbutils pushes by reading its source 4 KiB at a time, so a source that checks
the cancel event on every read makes a push stop between chunks; a pull is
driven chunk by chunk here. A cancelled or failed pull leaves no partial file
behind, and a cancelled push removes the partial copy on the device.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from pathlib import Path
from typing import BinaryIO

from adbutils import AdbError

from app.devices.adb_client import GONE_CHECK_S, SafeAdbClient, describe, translate_error
from app.devices.adb_shell import ShellRunner
from app.devices.base import (
    CommandCancelledError,
    DeviceError,
    DeviceGoneError,
)

log = logging.getLogger(__name__)

TEMP_DIR = "/data/local/tmp"
# adbutils' messages when a sync stream ends early (the device may have vanished).
_BROKEN_STREAM_HINTS = ("Invalid sync cmd", "connection closed", "Connection is closed",
                        "read chunk missing", "timeout")
CLEANUP_TIMEOUT_S = 10.0


class _CancellableReader:
    """A file object for adbutils' push loop that stops when ``cancel`` is set."""

    def __init__(self, source: BinaryIO, cancel: threading.Event | None) -> None:
        self._source = source
        self._cancel = cancel

    def read(self, size: int = -1) -> bytes:
        if self._cancel is not None and self._cancel.is_set():
            raise CommandCancelledError("transfer cancelled")
        return self._source.read(size)

    def close(self) -> None:
        self._source.close()


class FileTransfer:
    """push / pull / temporary APK copies for one provider (thread-safe)."""

    def __init__(self, client: SafeAdbClient, shell: ShellRunner) -> None:
        self._client = client
        self._shell = shell

    def push(self, serial: str, local: Path, remote: str, *,
             cancel: threading.Event | None = None) -> int:
        """Copy ``local`` to ``remote`` (a trailing ``/`` means "into that directory").

        Raises:
            CommandCancelledError: ``cancel`` was set; the partial copy is removed.
            DeviceGoneError / DeviceError: the transfer failed.
        """
        if not local.is_file():
            raise DeviceError(f"push: {local} is not a readable file")
        if remote.endswith("/"):
            remote += local.name
        if cancel is not None and cancel.is_set():
            raise CommandCancelledError("transfer cancelled before it started")
        reader = _CancellableReader(local.open("rb"), cancel)
        try:
            sync = self._client.device(serial).sync
            pushed: int = sync.push(reader, remote, mode=0o644)
            return pushed
        except CommandCancelledError:
            self.remove_quietly(serial, remote)
            raise
        except (AdbError, OSError, EOFError) as exc:
            raise self._failure(serial, f"push to {remote}", exc) from exc
        finally:
            reader.close()

    def pull(self, serial: str, remote: str, local: Path, *,
             cancel: threading.Event | None = None) -> int:
        """Copy ``remote`` to ``local`` through a ``.part`` file renamed at the end.

        Raises:
            CommandCancelledError: ``cancel`` was set; nothing is left at ``local``.
            DeviceGoneError / DeviceError: the transfer failed.
        """
        partial = local.with_name(local.name + ".part")
        total = 0
        chunks = self._client.device(serial).sync.iter_content(remote)
        try:
            with partial.open("wb") as out:
                for chunk in chunks:
                    if cancel is not None and cancel.is_set():
                        raise CommandCancelledError("transfer cancelled")
                    out.write(chunk)
                    total += len(chunk)
            os.replace(partial, local)
            return total
        except (AdbError, OSError, EOFError) as exc:
            raise self._failure(serial, f"pull of {remote}", exc) from exc
        finally:
            chunks.close()  # closes the sync connection at once on cancel/failure
            partial.unlink(missing_ok=True)

    def push_temp_apk(self, serial: str, apk: Path, *,
                      cancel: threading.Event | None = None) -> str:
        """Push an APK to a fresh ``/data/local/tmp/taskdesk-<random>.apk``."""
        remote = f"{TEMP_DIR}/taskdesk-{secrets.token_hex(8)}.apk"
        self.push(serial, apk, remote, cancel=cancel)
        return remote

    def remove_quietly(self, serial: str, remote: str) -> None:
        """Best-effort ``rm -f`` (the device may be gone: that is logged, not raised)."""
        try:
            self._shell.run(serial, ["rm", "-f", remote], v2=False,
                            timeout=CLEANUP_TIMEOUT_S)
        except DeviceError as exc:
            log.info("%s: could not remove %s: %s", serial, remote, exc)

    def _failure(self, serial: str, what: str, exc: BaseException) -> DeviceError:
        error = translate_error(exc, serial)
        if isinstance(error, DeviceGoneError):
            return error
        # A refusal from the device (missing file, no permission) arrives as a sync
        # FAIL with text while the device stays online: no need to wait and re-check.
        broken = isinstance(exc, OSError | EOFError) or any(
            hint in describe(exc) for hint in _BROKEN_STREAM_HINTS)
        if self._client.went_away(serial, within=GONE_CHECK_S if broken else 0.0):
            return DeviceGoneError(f"{serial}: device gone during {what}")
        return DeviceError(f"{serial}: {what} failed: {describe(exc)}")
