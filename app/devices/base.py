"""The device provider interface the engine drives.

Every method is synchronous and may block (adb is a socket protocol); the engine
calls them from a thread pool, never on the event loop. Listener callbacks come
from the provider's tracking thread.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from app.core.enums import DeviceState


class DeviceError(Exception):
    """A device operation failed (command error, install refused, adb error)."""


class DeviceGoneError(DeviceError):
    """The device disappeared (unplugged, adb server restarted) during the operation."""


class CommandCancelledError(DeviceError):
    """The operation was interrupted because its ``cancel`` event was set."""


class CommandTimeoutError(DeviceError):
    """The operation did not finish within its timeout; it was interrupted."""


@dataclass(frozen=True)
class DeviceInfo:
    """What the provider knows about one device. Metadata is empty unless online."""

    serial: str
    state: DeviceState
    transport: str = "usb"  # usb | tcp | sim
    model: str = ""
    manufacturer: str = ""
    android_version: str = ""
    sdk: int | None = None
    abi: str = ""
    usb_path: str = ""


@dataclass(frozen=True)
class BatteryInfo:
    level: int | None
    temperature_c: float | None
    charging: bool | None


@dataclass(frozen=True)
class ShellResult:
    output: str
    exit_code: int | None
    omitted_bytes: int = 0


@dataclass(frozen=True)
class ServerInfo:
    host: str
    port: int
    alive: bool
    version: int | None = None
    message: str = ""


class DeviceListener(Protocol):
    def device_changed(self, info: DeviceInfo) -> None:
        """A device appeared, changed state, or disappeared (state ``ABSENT``)."""

    def server_state_changed(self, info: ServerInfo) -> None:
        """The adb server went away or came back."""


class InteractiveShell(Protocol):
    """A raw PTY-less interactive ``adb shell`` stream (for the GUI terminal)."""

    def send(self, data: bytes) -> None: ...
    def recv(self, max_bytes: int = 65536) -> bytes:
        """Blocking read; returns b"" when the stream ended."""
    def close(self) -> None: ...


class DeviceProvider(Protocol):
    def start(self, listener: DeviceListener) -> None:
        """Start tracking devices in a background thread (idempotent)."""

    def stop(self) -> None:
        """Stop tracking; returns once the tracking thread has ended."""

    def server_info(self) -> ServerInfo: ...

    def devices(self) -> list[DeviceInfo]:
        """The current list (with cached metadata)."""

    def battery(self, serial: str) -> BatteryInfo: ...

    def shell(
        self,
        serial: str,
        command: str | Sequence[str],
        *,
        timeout: float,
        cancel: threading.Event | None = None,
        output_limit: int = 64 * 1024,
    ) -> ShellResult:
        """Run a command; interrupt it (closing the stream) on timeout or ``cancel``."""

    def push(self, serial: str, local: Path, remote: str, *,
             cancel: threading.Event | None = None) -> int:
        """Copy a local file to the device; returns the byte count."""

    def pull(self, serial: str, remote: str, local: Path, *,
             cancel: threading.Event | None = None) -> int: ...

    def install(self, serial: str, apk: Path, *,
                cancel: threading.Event | None = None) -> str:
        """Install an APK; returns the package manager's message."""

    def uninstall(self, serial: str, package: str) -> str: ...

    def screenshot(self, serial: str) -> bytes:
        """A PNG of the screen."""

    def reboot(self, serial: str) -> None: ...

    def open_shell(self, serial: str) -> InteractiveShell: ...
