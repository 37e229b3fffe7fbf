"""Running commands on a device over a streamed adb connection.

Every read uses a short socket timeout, so a set ``cancel`` event or a passed
deadline is noticed within ``POLL_S``; the connection is then closed, which
makes the adb server close the device stream and adbd end the command. Output
goes through ``HeadTailBuffer``, so a command that prints gigabytes costs
``output_limit`` bytes of memory.
"""

from __future__ import annotations

import contextlib
import io
import shlex
import socket
import threading
import time
from collections.abc import Callable, Sequence

from adbutils import AdbConnection

from app.core.output import HeadTailBuffer
from app.devices.adb_client import CONNECT_TIMEOUT_S, SafeAdbClient
from app.devices.adb_parse import (
    V2_EXIT,
    V2_STDERR,
    V2_STDOUT,
    MarkerStripper,
    ShellV2Decoder,
    with_exit_marker,
)
from app.devices.base import (
    CommandCancelledError,
    CommandTimeoutError,
    DeviceError,
    DeviceGoneError,
    ShellResult,
)

POLL_S = 0.1
RECV_SIZE = 64 * 1024


def command_text(command: str | Sequence[str]) -> str:
    """A shell line; a sequence is quoted argument by argument."""
    if isinstance(command, str):
        return command
    return shlex.join(command)


def pump(
    conn: AdbConnection,
    *,
    deadline: float,
    cancel: threading.Event | None,
    on_chunk: Callable[[bytes], bool],
    label: str = "command",
) -> bool:
    """Feed received bytes to ``on_chunk`` until it returns True (done) or EOF.

    Returns:
        True when ``on_chunk`` declared the stream complete, False on EOF.

    Raises:
        CommandCancelledError / CommandTimeoutError: checked between reads.
        OSError: the connection broke (the caller decides what that means).
    """
    sock = conn.conn
    sock.settimeout(POLL_S)
    while True:
        if cancel is not None and cancel.is_set():
            raise CommandCancelledError(f"{label} cancelled")
        if time.monotonic() >= deadline:
            raise CommandTimeoutError(f"{label} timed out")
        try:
            chunk = sock.recv(RECV_SIZE)
        except TimeoutError:
            continue
        if not chunk:
            return False
        if on_chunk(chunk):
            return True


class ShellRunner:
    """Runs commands for one provider; safe to use from many threads at once."""

    def __init__(self, client: SafeAdbClient) -> None:
        self._client = client

    def run(
        self,
        serial: str,
        command: str | Sequence[str],
        *,
        v2: bool,
        timeout: float,
        cancel: threading.Event | None = None,
        output_limit: int = 64 * 1024,
    ) -> ShellResult:
        """Run ``command``, returning its capped output and exit code.

        Raises:
            CommandCancelledError, CommandTimeoutError: the command was interrupted.
            DeviceGoneError: the device or the server went away.
            DeviceError: the device refused the command.
        """
        deadline = time.monotonic() + timeout
        text = command_text(command)
        buffer = HeadTailBuffer(output_limit)
        exit_code: int | None = None

        if v2:
            decoder = ShellV2Decoder()

            def on_chunk(chunk: bytes) -> bool:
                nonlocal exit_code
                for packet_id, payload in decoder.feed(chunk):
                    if packet_id in (V2_STDOUT, V2_STDERR):
                        buffer.write(payload)
                    elif packet_id == V2_EXIT:
                        exit_code = payload[0] if payload else None
                        return True
                return False

            service = f"shell,v2,raw:{text}"
        else:
            stripper = MarkerStripper()

            def on_chunk(chunk: bytes) -> bool:
                buffer.write(stripper.feed(chunk))
                return False

            service = f"shell:{with_exit_marker(text)}"

        self._stream(serial, service, deadline, cancel, on_chunk, command=text)
        if not v2:
            rest, exit_code = stripper.finish()
            buffer.write(rest)
        if exit_code is None:
            self._raise_if_gone(serial)
        return ShellResult(output=buffer.text(), exit_code=exit_code,
                           omitted_bytes=buffer.omitted)

    def read_stdout(
        self,
        serial: str,
        command: str,
        *,
        v2: bool,
        timeout: float,
        cancel: threading.Event | None = None,
        limit: int = 64 * 1024 * 1024,
    ) -> bytes:
        """A command's raw stdout, byte for byte (``exec:`` — adb exec-out — without shell v2).

        Raises:
            DeviceError: the command failed, or printed more than ``limit`` bytes.
        """
        deadline = time.monotonic() + timeout
        out = io.BytesIO()
        errors = HeadTailBuffer(4096)
        exit_code: int | None = None

        def keep(data: bytes) -> None:
            if out.tell() + len(data) > limit:
                raise DeviceError(f"{serial}: {command!r} printed more than {limit} bytes")
            out.write(data)

        if v2:
            decoder = ShellV2Decoder()

            def on_chunk(chunk: bytes) -> bool:
                nonlocal exit_code
                for packet_id, payload in decoder.feed(chunk):
                    if packet_id == V2_STDOUT:
                        keep(payload)
                    elif packet_id == V2_STDERR:
                        errors.write(payload)
                    elif packet_id == V2_EXIT:
                        exit_code = payload[0] if payload else None
                        return True
                return False

            complete = self._stream(serial, f"shell,v2,raw:{command}", deadline, cancel,
                                    on_chunk)
            if not complete:
                self._raise_if_gone(serial)
                raise DeviceError(f"{serial}: {command!r} ended without an exit status")
            if exit_code != 0:
                raise DeviceError(
                    f"{serial}: {command!r} exited {exit_code}: {errors.text().strip()}")
        else:
            def on_raw(chunk: bytes) -> bool:
                keep(chunk)
                return False

            self._stream(serial, f"exec:{command}", deadline, cancel, on_raw)
        return out.getvalue()

    def _stream(
        self,
        serial: str,
        service: str,
        deadline: float,
        cancel: threading.Event | None,
        on_chunk: Callable[[bytes], bool],
        command: str = "",
    ) -> bool:
        """Open ``service`` and pump it; always closes the connection."""
        label = f"{serial}: {(command or service.partition(':')[2])[:80]!r}"
        if cancel is not None and cancel.is_set():
            raise CommandCancelledError(f"{label} cancelled before it started")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CommandTimeoutError(f"{label}: no time left to start it")
        conn = self._client.open_service(
            serial, service, timeout=max(POLL_S, min(CONNECT_TIMEOUT_S, remaining)))
        try:
            return pump(conn, deadline=deadline, cancel=cancel, on_chunk=on_chunk, label=label)
        except OSError as exc:
            self._raise_if_gone(serial)
            raise DeviceError(f"{serial}: stream broke: {exc}") from exc
        finally:
            conn.close()

    def _raise_if_gone(self, serial: str) -> None:
        """After an abnormal end: DeviceGoneError if the device is no longer online."""
        if self._client.went_away(serial):
            raise DeviceGoneError(f"{serial}: device gone during the command")


class AdbInteractiveShell:
    """``InteractiveShell`` over a raw ``shell:`` stream (for the GUI terminal)."""

    def __init__(self, conn: AdbConnection) -> None:
        self._conn = conn
        self._sock: socket.socket = conn.conn
        self._sock.settimeout(None)
        self._closed = threading.Event()

    def send(self, data: bytes) -> None:
        """Write keystrokes/commands to the shell.

        Raises:
            DeviceGoneError: the stream has ended.
        """
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise DeviceGoneError(f"shell stream closed: {exc}") from exc

    def recv(self, max_bytes: int = 65536) -> bytes:
        """Block until output arrives; b"" once the stream ended or was closed."""
        if self._closed.is_set():
            return b""
        try:
            return self._sock.recv(max_bytes)
        except OSError:
            return b""

    def close(self) -> None:
        """End the session; a ``recv`` blocked in another thread returns b""."""
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._conn.close()
