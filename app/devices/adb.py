"""The real device provider: one adb server, reached through adbutils.

``AdbProvider`` implements ``app.devices.base.DeviceProvider``. Discovery lives
in ``adb_tracker``, command streaming in ``adb_shell``, file transfer and
package installs in ``adb_files``; this module wires them together and keeps
the per-connection cache (metadata and adbd features, probed once per
connection and dropped when the device leaves ``online``).

Every method is blocking and thread-safe: the engine calls them from a pool,
concurrently for different serials. Each call uses its own server connection.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from adbutils import AdbError

from app.core.enums import DeviceState
from app.devices.adb_client import SafeAdbClient, translate_error
from app.devices.adb_files import FileTransfer
from app.devices.adb_parse import (
    check_pm_output,
    metadata_from_props,
    parse_battery,
    parse_getprop,
    usb_path_from_devpath,
    validate_package_name,
)
from app.devices.adb_shell import AdbInteractiveShell, ShellRunner
from app.devices.adb_tracker import DeviceTracker
from app.devices.base import (
    BatteryInfo,
    DeviceError,
    DeviceInfo,
    DeviceListener,
    InteractiveShell,
    ServerInfo,
    ShellResult,
)

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 15.0
BATTERY_TIMEOUT_S = 15.0
PM_TIMEOUT_S = 300.0
SCREENSHOT_TIMEOUT_S = 30.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class AdbProvider:
    """``DeviceProvider`` over the adb server at ``host:port``.

    Args:
        host: adb server address (loopback unless the lab says otherwise).
        port: adb server port.
        resync_backoff: (first delay, cap) in seconds between reconnect attempts
            while the server is unreachable; delays double and carry ±20 % jitter.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 5037, *,
                 resync_backoff: tuple[float, float] = (0.5, 10.0)) -> None:
        self._client = SafeAdbClient(host, port)
        self._shell = ShellRunner(self._client)
        self._files = FileTransfer(self._client, self._shell)
        self._backoff = resync_backoff
        self._cache_lock = threading.Lock()
        self._metadata: dict[str, DeviceInfo] = {}
        self._features: dict[str, frozenset[str]] = {}
        self._lifecycle = threading.Lock()
        self._tracker: DeviceTracker | None = None

    # --- discovery -------------------------------------------------------------------

    def start(self, listener: DeviceListener) -> None:
        """Start tracking devices (idempotent); events go to ``listener``."""
        with self._lifecycle:
            if self._tracker is not None:
                return
            self._tracker = DeviceTracker(self._client, self._probe, listener,
                                          backoff=self._backoff,
                                          on_leave_online=self._forget)
            self._tracker.start()

    def stop(self) -> None:
        """Stop tracking; returns once the tracking and event threads have ended."""
        with self._lifecycle:
            tracker, self._tracker = self._tracker, None
        if tracker is not None:
            tracker.stop()

    def server_info(self) -> ServerInfo:
        """The server's address, whether it answers, and its protocol version."""
        host, port = self._client.host, self._client.port
        try:
            version = int(self._client.host_query("host:version"), 16)
        except (DeviceError, AdbError, OSError, ValueError) as exc:
            return ServerInfo(host, port, alive=False, message=str(exc))
        return ServerInfo(host, port, alive=True, version=version)

    def devices(self) -> list[DeviceInfo]:
        """Known devices with cached metadata (absent ones excluded).

        Without ``start()`` this asks the server directly and probes online
        devices not seen before.

        Raises:
            DeviceGoneError: tracking is off and the server is unreachable.
        """
        with self._lifecycle:
            tracker = self._tracker
        if tracker is not None:
            return tracker.devices()
        found: list[DeviceInfo] = []
        for serial, state in sorted(self._client.device_states().items()):
            if state == DeviceState.ONLINE:
                with self._cache_lock:
                    cached = self._metadata.get(serial)
                found.append(cached or self._probe(serial))
            else:
                found.append(DeviceInfo(serial=serial, state=state))
        return found

    # --- commands --------------------------------------------------------------------

    def shell(
        self,
        serial: str,
        command: str | Sequence[str],
        *,
        timeout: float,
        cancel: threading.Event | None = None,
        output_limit: int = 64 * 1024,
    ) -> ShellResult:
        """Run a command; interrupted within ~0.1 s of ``cancel`` or the deadline.

        Raises:
            CommandCancelledError, CommandTimeoutError: interrupted.
            DeviceGoneError: the device or server went away.
        """
        return self._shell.run(serial, command, v2=self._has_shell_v2(serial), timeout=timeout,
                               cancel=cancel, output_limit=output_limit)

    def battery(self, serial: str) -> BatteryInfo:
        result = self.shell(serial, "dumpsys battery", timeout=BATTERY_TIMEOUT_S)
        if result.exit_code not in (0, None):
            raise DeviceError(f"{serial}: dumpsys battery exited {result.exit_code}: "
                              f"{result.output.strip()[:200]}")
        return parse_battery(result.output)

    def push(self, serial: str, local: Path, remote: str, *,
             cancel: threading.Event | None = None) -> int:
        """Copy a local file to the device (cancellable between 4 KiB chunks)."""
        return self._files.push(serial, local, remote, cancel=cancel)

    def pull(self, serial: str, remote: str, local: Path, *,
             cancel: threading.Event | None = None) -> int:
        """Copy a device file to ``local`` (written whole or not at all)."""
        return self._files.pull(serial, remote, local, cancel=cancel)

    def install(self, serial: str, apk: Path, *,
                cancel: threading.Event | None = None) -> str:
        """Push the APK to a temporary path, ``pm install -r`` it, remove the copy.

        Raises:
            DeviceError: with the package manager's ``Failure [...]`` text.
        """
        remote = self._files.push_temp_apk(serial, apk, cancel=cancel)
        try:
            result = self.shell(serial, ["pm", "install", "-r", remote], timeout=PM_TIMEOUT_S,
                                cancel=cancel)
            return check_pm_output(result.output, "install")
        finally:
            self._files.remove_quietly(serial, remote)

    def uninstall(self, serial: str, package: str) -> str:
        result = self.shell(serial, ["pm", "uninstall", validate_package_name(package)],
                            timeout=PM_TIMEOUT_S)
        return check_pm_output(result.output, "uninstall")

    def screenshot(self, serial: str) -> bytes:
        """PNG bytes of ``screencap -p``, binary clean (shell v2 stdout or exec-out)."""
        data = self._shell.read_stdout(serial, "screencap -p", v2=self._has_shell_v2(serial),
                                       timeout=SCREENSHOT_TIMEOUT_S)
        if not data.startswith(PNG_SIGNATURE):
            raise DeviceError(f"{serial}: screencap did not return a PNG "
                              f"({len(data)} bytes starting {data[:16]!r})")
        return data

    def reboot(self, serial: str) -> None:
        """Ask adbd to reboot; the device then drops off and comes back by itself."""
        conn = self._client.open_service(serial, "reboot:")
        try:
            conn.read_until_close()  # adbd may say a word before it goes down
        except (AdbError, OSError):
            pass  # the connection dies with the device: that is the expected outcome
        finally:
            conn.close()

    def open_shell(self, serial: str) -> InteractiveShell:
        """An interactive ``shell:`` session (send/recv/close) for a terminal."""
        return AdbInteractiveShell(self._client.open_service(serial, "shell:"))

    # --- per-connection cache -------------------------------------------------------------

    def _probe(self, serial: str) -> DeviceInfo:
        """Read everything we show about a device: one ``getprop``, devpath, features."""
        features = self._fetch_features(serial)
        result = self._shell.run(serial, "getprop", v2="shell_v2" in features,
                                 timeout=PROBE_TIMEOUT_S)
        meta = metadata_from_props(serial, parse_getprop(result.output))
        try:
            usb_path = usb_path_from_devpath(self._client.device(serial).get_devpath())
        except (AdbError, OSError) as exc:
            log.debug("%s: get-devpath failed: %s", serial, exc)
            usb_path = ""
        info = DeviceInfo(
            serial=serial, state=DeviceState.ONLINE, transport=meta.transport,
            model=meta.model, manufacturer=meta.manufacturer,
            android_version=meta.android_version, sdk=meta.sdk, abi=meta.abi,
            usb_path=usb_path,
        )
        with self._cache_lock:
            self._metadata[serial] = info
        return info

    def _has_shell_v2(self, serial: str) -> bool:
        with self._cache_lock:
            features = self._features.get(serial)
        if features is None:
            features = self._fetch_features(serial)
        return "shell_v2" in features

    def _fetch_features(self, serial: str) -> frozenset[str]:
        try:
            text = self._client.host_query(f"host-serial:{serial}:features")
        except AdbError as exc:
            raise translate_error(exc, serial) from exc
        features = frozenset(f.strip() for f in text.split(",") if f.strip())
        with self._cache_lock:
            self._features[serial] = features
        return features

    def _forget(self, serial: str) -> None:
        """The device left ``online``: its next connection is probed afresh."""
        with self._cache_lock:
            self._metadata.pop(serial, None)
            self._features.pop(serial, None)
