"""A connection to one adb server that never starts a server by itself.

adbutils' ``AdbConnection`` runs ``adb start-server`` whenever a connect fails.
That would launch a daemon on the *default* port (not ours) each time the
provider retries against a dead server, so the client here connects or fails,
nothing else. Errors are translated into the provider's vocabulary: the device
(or the server) being gone is ``DeviceGoneError``, anything else ``DeviceError``.
"""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

import adbutils
from adbutils import AdbConnection, AdbError
from adbutils.errors import AdbConnectionError

from app.core.enums import DeviceState
from app.devices.adb_parse import parse_device_list
from app.devices.base import DeviceError, DeviceGoneError

CONNECT_TIMEOUT_S = 3.0
# No progress for this long on a file transfer means the device is stuck.
IO_TIMEOUT_S = 30.0
# The server closes a vanished device's streams just before it updates its
# device list: how long to keep asking before concluding the device is still there.
GONE_CHECK_S = 0.5

# What the adb server answers when a transport is not usable right now.
_GONE_ANSWERS = ("not found", "offline", "unauthorized", "authorizing", "no devices",
                 "no emulators", "connecting", "closed")


class _NoSpawnConnection(AdbConnection):  # type: ignore[misc]  # adbutils is untyped
    """``AdbConnection`` whose connect never falls back to ``adb start-server`` (and,
    unlike adbutils' own, closes its socket when the connect fails)."""

    def __init__(self, host: str, port: int) -> None:
        self._address = (host, port)
        super().__init__(host, port)

    def _safe_connect(self) -> socket.socket:
        try:
            sock = socket.create_connection(self._address, timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            raise AdbConnectionError(f"connect to adb server failed: {exc}") from exc
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        return sock

    def close(self) -> None:
        """Close at once. adbutils' own close sleeps 10 ms after shutting down the write
        side; every caller here has read the answer it waits for (or is abandoning the
        stream), so there is nothing to wait for, and the sleep cost every command 10 ms
        of latency and a device thread."""
        if self.closed:
            return
        sock = self.conn
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        sock.close()
        self._AdbConnection__conn = None  # adbutils keeps its socket in a private name


class SafeAdbClient(adbutils.AdbClient):  # type: ignore[misc]  # adbutils is untyped
    """``adbutils.AdbClient`` bound to one host/port that cannot spawn a server."""

    def __init__(self, host: str, port: int, *, io_timeout: float = IO_TIMEOUT_S) -> None:
        super().__init__(host=host, port=port)
        self._io_timeout = io_timeout

    def make_connection(self, timeout: float | None = None) -> AdbConnection:
        """Connect; every socket call then times out after ``timeout`` (default: the
        stall timeout, so no adbutils call can hang forever on a frozen device)."""
        conn = _NoSpawnConnection(self.host, self.port)
        conn.conn.settimeout(timeout or self._io_timeout)
        return conn

    def open_service(self, serial: str, service: str, *,
                     timeout: float = CONNECT_TIMEOUT_S) -> AdbConnection:
        """Open ``service`` (``shell,v2,raw:ls``, ``sync:``…) on the device.

        Uses ``host:transport:`` (one round trip on every adb version, unlike
        adbutils' ``tport`` path that asks the server version first).

        Raises:
            DeviceGoneError: the device is not online or the server is unreachable.
            DeviceError: the server or device refused the service.
        """
        conn = self.connect_server(timeout)
        try:
            conn.send_command(f"host:transport:{serial}")
            conn.check_okay()
        except (AdbError, OSError) as exc:
            conn.close()
            raise translate_error(exc, serial) from exc
        try:
            conn.send_command(service)
            conn.check_okay()
        except (AdbError, OSError) as exc:
            conn.close()
            error = translate_error(exc, serial)
            if isinstance(error, DeviceGoneError):
                raise error from exc
            raise DeviceError(f"{serial}: {service.split(':', 1)[0]} refused: {exc}") from exc
        return conn

    def connect_server(self, timeout: float = CONNECT_TIMEOUT_S) -> AdbConnection:
        """A raw connection to the server, with ``timeout`` on every socket call.

        Raises:
            DeviceGoneError: nothing answers on host:port.
        """
        try:
            return self.make_connection(timeout=timeout)
        except (AdbError, OSError) as exc:
            raise DeviceGoneError(
                f"adb server {self.host}:{self.port} unreachable: {exc}") from exc

    def host_query(self, command: str, *, timeout: float = CONNECT_TIMEOUT_S) -> str:
        """Send a ``host:``/``host-serial:`` query and return its string answer."""
        conn = self.connect_server(timeout)
        try:
            conn.send_command(command)
            conn.check_okay()
            answer: str = conn.read_string_block()
            return answer
        finally:
            conn.close()

    def device_states(self, *, timeout: float = CONNECT_TIMEOUT_S) -> dict[str, DeviceState]:
        """Every device the server lists, with its state."""
        try:
            return parse_device_list(self.host_query("host:devices", timeout=timeout))
        except AdbError as exc:
            raise DeviceError(f"adb server refused host:devices: {exc}") from exc

    def is_online(self, serial: str) -> bool:
        """True when the server lists ``serial`` as ``device``; False if not, or if
        the server cannot be asked at all."""
        try:
            return self.device_states().get(serial) == DeviceState.ONLINE
        except DeviceError:
            return False

    def went_away(self, serial: str, *, within: float = GONE_CHECK_S) -> bool:
        """After a stream ended abnormally: has the device (or the server) gone?"""
        give_up = time.monotonic() + within
        while True:
            if not self.is_online(serial):
                return True
            if time.monotonic() >= give_up:
                return False
            time.sleep(0.05)

    def device(self, serial: str | None = None, transport_id: int | None = None) -> Any:
        """adbutils' device object (for sync); only explicit serials are allowed."""
        if not serial:
            raise DeviceError("a device serial is required")
        return adbutils.AdbDevice(self, serial=serial)


def translate_error(exc: BaseException, serial: str) -> DeviceError:
    """Classify an adb failure: device/server gone versus a plain error."""
    if isinstance(exc, DeviceError):
        return exc
    text = describe(exc)
    if isinstance(exc, OSError | EOFError) or any(a in text.lower() for a in _GONE_ANSWERS):
        return DeviceGoneError(f"{serial}: device gone ({text})")
    return DeviceError(f"{serial}: {text}")


def describe(exc: BaseException) -> str:
    """An exception's message (adbutils errors often carry a tuple of args)."""
    if exc.args and isinstance(exc.args[0], str):
        return exc.args[0]
    return str(exc) or type(exc).__name__
