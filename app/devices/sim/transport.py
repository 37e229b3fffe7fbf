"""The device side of one adb transport connection: handshake, streams, flow control.

The adb server connects to a simulated phone over TCP and speaks the device
protocol (see :mod:`protocol`). This module plays adbd's part of it:

- ``CNXN`` handshake (version and max payload negotiation, the ``device::``
  banner with properties and features), or the ``AUTH`` token dance for a phone
  that has not authorised this host (adb then lists it as ``unauthorized``);
- ``OPEN`` starts a service (shell, sync, ...) on a new stream; ``OKAY`` /
  ``WRTE`` / ``CLSE`` move data with adb's one-write-in-flight flow control;
- a ``CLSE`` from the host cancels the service task at once, which is how a
  closed ``logcat`` or ``sleep 60`` stops promptly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Protocol

from app.devices.sim import protocol as p

log = logging.getLogger(__name__)

# Incoming data buffered per stream before we stop acknowledging (back-pressure).
_INBOX_HIGH_WATER = 256 * 1024

ServiceFn = Callable[["Stream"], Awaitable[None]]


class StreamClosedError(Exception):
    """The stream was closed (by the host, or because the connection dropped)."""


class DeviceSide(Protocol):
    """What a connection needs from the phone behind it."""

    def banner(self) -> bytes:
        """The ``device::...`` CNXN payload."""

    def authorized(self) -> bool:
        """Whether this phone accepts the host without an RSA prompt."""

    def open_service(self, name: str) -> ServiceFn | None:
        """The coroutine function serving ``name``, or None to refuse the OPEN."""


class Stream:
    """One adb stream: a service the host opened on this connection."""

    def __init__(self, conn: Connection, local_id: int, remote_id: int, service: str) -> None:
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.service = service
        self.closed = False
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._write_lock = asyncio.Lock()
        self._inbox = bytearray()
        self._inbox_changed = asyncio.Event()
        self._okay_owed = False
        self.task: asyncio.Task[None] | None = None

    async def write(self, data: bytes) -> None:
        """Send data to the host, one ``WRTE`` in flight at a time.

        Raises:
            StreamClosedError: the stream or connection is gone.
        """
        view = memoryview(data)
        async with self._write_lock:
            while view:
                await self._can_write.wait()
                if self.closed:
                    raise StreamClosedError(self.service)
                chunk = bytes(view[: self.conn.max_payload])
                view = view[len(chunk) :]
                self._can_write.clear()
                self.conn.send(p.Message(p.A_WRTE, self.local_id, self.remote_id, chunk))

    async def read(self, max_bytes: int = 65536) -> bytes:
        """Up to ``max_bytes`` of data from the host; b"" once the stream is closed."""
        while not self._inbox:
            if self.closed:
                return b""
            self._inbox_changed.clear()
            await self._inbox_changed.wait()
        data = bytes(self._inbox[:max_bytes])
        del self._inbox[:max_bytes]
        self._maybe_ack()
        return data

    async def read_exactly(self, size: int) -> bytes:
        """Exactly ``size`` bytes.

        Raises:
            StreamClosedError: the stream closed first.
        """
        while len(self._inbox) < size:
            if self.closed:
                raise StreamClosedError(self.service)
            self._inbox_changed.clear()
            await self._inbox_changed.wait()
        data = bytes(self._inbox[:size])
        del self._inbox[:size]
        self._maybe_ack()
        return data

    def close(self) -> None:
        """Close from the device side (service finished): tell the host with ``CLSE``."""
        if self.closed:
            return
        self._mark_closed()
        self.conn.forget(self)
        self.conn.send(p.Message(p.A_CLSE, self.local_id, self.remote_id))

    # -- called by the connection -------------------------------------------------

    def on_okay(self) -> None:
        self._can_write.set()

    def on_data(self, payload: bytes) -> None:
        self._inbox += payload
        self._inbox_changed.set()
        if len(self._inbox) < _INBOX_HIGH_WATER:
            self.conn.send(p.Message(p.A_OKAY, self.local_id, self.remote_id))
        else:
            self._okay_owed = True

    def on_remote_close(self) -> None:
        """The host closed the stream (or the link dropped): stop the service now."""
        if self.closed:
            return
        self._mark_closed()
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def _mark_closed(self) -> None:
        self.closed = True
        self._can_write.set()  # wake writers so they see the closure
        self._inbox_changed.set()

    def _maybe_ack(self) -> None:
        if self._okay_owed and len(self._inbox) < _INBOX_HIGH_WATER and not self.closed:
            self._okay_owed = False
            self.conn.send(p.Message(p.A_OKAY, self.local_id, self.remote_id))


class Connection:
    """One TCP connection from the adb server to a simulated phone."""

    def __init__(
        self,
        device: DeviceSide,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self._device = device
        self._reader = reader
        self._writer = writer
        self._streams: dict[int, Stream] = {}
        self._next_id = 1
        self.version = p.DEVICE_VERSION
        self.max_payload = p.MAX_PAYLOAD_V1
        self.online = False
        self.awaiting_user = False  # host sent its public key: the "allow?" prompt is up

    async def serve(self) -> None:
        """Read and dispatch messages until the host disconnects or we are dropped."""
        try:
            while True:
                header = await self._reader.readexactly(p.HEADER_SIZE)
                command, arg0, arg1, length, _check = p.decode_header(header, p.DEVICE_MAX_PAYLOAD)
                payload = await self._reader.readexactly(length) if length else b""
                self._dispatch(p.Message(command, arg0, arg1, payload))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except p.ProtocolError as exc:
            log.warning("sim: dropping connection after protocol error: %s", exc)
        finally:
            self._teardown()
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()

    def send(self, message: p.Message) -> None:
        if self._writer.is_closing():
            return
        self._writer.write(
            p.encode(message, with_checksum=self.version < p.VERSION_SKIP_CHECKSUM)
        )

    def forget(self, stream: Stream) -> None:
        self._streams.pop(stream.local_id, None)

    def authorize(self) -> None:
        """The user accepted the host key: complete the handshake now."""
        if not self.online and not self._writer.is_closing():
            self._send_cnxn()

    def drop(self) -> None:
        """Cut the link abruptly, as pulling the cable does (the host sees a reset)."""
        self._teardown()
        transport = self._writer.transport
        transport.abort()

    # -- message handling -----------------------------------------------------------

    def _dispatch(self, msg: p.Message) -> None:
        if msg.command == p.A_CNXN:
            self._on_cnxn(msg)
        elif msg.command == p.A_AUTH:
            self._on_auth(msg)
        elif not self.online:
            # Nothing but the handshake is allowed before CNXN completes (adbd drops it too).
            return
        elif msg.command == p.A_OPEN:
            self._on_open(msg)
        elif msg.command == p.A_OKAY:
            stream = self._streams.get(msg.arg1)
            if stream is not None:
                stream.on_okay()
        elif msg.command == p.A_WRTE:
            stream = self._streams.get(msg.arg1)
            if stream is not None:
                stream.on_data(msg.payload)
        elif msg.command == p.A_CLSE:
            stream = self._streams.pop(msg.arg1, None)
            if stream is not None:
                stream.on_remote_close()

    def _on_cnxn(self, msg: p.Message) -> None:
        if msg.arg0 < p.VERSION_MIN:
            raise p.ProtocolError(f"host protocol version 0x{msg.arg0:08x} too old")
        # A new CNXN restarts the session: whatever ran before is gone.
        self._close_all_streams()
        self.online = False
        self.version = min(msg.arg0, p.DEVICE_VERSION)
        self.max_payload = max(p.MAX_PAYLOAD_V1, min(msg.arg1, p.DEVICE_MAX_PAYLOAD))
        if self._device.authorized():
            self._send_cnxn()
        else:
            self._send_token()

    def _on_auth(self, msg: p.Message) -> None:
        if self.online:
            return
        if self._device.authorized():
            self._send_cnxn()
        elif msg.arg0 == p.AUTH_SIGNATURE:
            # We never recognise the signature: ask again until the host offers its key.
            self._send_token()
        elif msg.arg0 == p.AUTH_RSAPUBLICKEY:
            self.awaiting_user = True

    def _on_open(self, msg: p.Message) -> None:
        name = msg.payload.rstrip(b"\x00").decode("utf-8", errors="replace")
        service = self._device.open_service(name)
        if service is None:
            self.send(p.Message(p.A_CLSE, 0, msg.arg0))
            return
        local_id = self._next_id
        self._next_id += 1
        stream = Stream(self, local_id, msg.arg0, name)
        self._streams[local_id] = stream
        self.send(p.Message(p.A_OKAY, local_id, msg.arg0))
        stream.task = asyncio.get_running_loop().create_task(
            self._run_service(service, stream), name=f"sim-service:{name[:40]}"
        )

    async def _run_service(self, service: ServiceFn, stream: Stream) -> None:
        try:
            await service(stream)
        except (StreamClosedError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("sim: service %r failed", stream.service)
        finally:
            stream.close()

    def _send_cnxn(self) -> None:
        self.online = True
        self.awaiting_user = False
        self.send(p.Message(p.A_CNXN, self.version, self.max_payload, self._device.banner()))

    def _send_token(self) -> None:
        self.send(p.Message(p.A_AUTH, p.AUTH_TOKEN, 0, os.urandom(p.AUTH_TOKEN_SIZE)))

    def _close_all_streams(self) -> None:
        streams = list(self._streams.values())
        self._streams.clear()
        for stream in streams:
            stream.on_remote_close()

    def _teardown(self) -> None:
        self.online = False
        self._close_all_streams()
