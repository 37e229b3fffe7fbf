"""The ``sync:`` service: adb's file transfer protocol over one stream.

Requests are ``ID`` (4 bytes) + little-endian u32 length + that many bytes
(a path; ``SEND`` adds ``,mode``). Implemented: ``STAT``, ``STA2``/``LST2``
(stat_v2), ``LIST``, ``SEND`` (``DATA``... ``DONE`` -> ``OKAY``/``FAIL``),
``RECV`` (-> ``DATA``... ``DONE``/``FAIL``) and ``QUIT``.
"""

from __future__ import annotations

import errno
import struct

from app.devices.sim.fs import FsError, MemoryFs, Node
from app.devices.sim.transport import Stream

SYNC_DATA_MAX = 64 * 1024
MAX_PATH = 1024
_U32 = struct.Struct("<I")
_STAT_V1 = struct.Struct("<III")
# error, dev, ino, mode, nlink, uid, gid, size, atime, mtime, ctime
_STAT_V2 = struct.Struct("<IQQIIIIQqqq")
_DENT = struct.Struct("<IIII")
_SHELL_UID = 2000


async def sync_service(stream: Stream, fs: MemoryFs) -> None:
    """Serve sync requests until ``QUIT`` or the stream closes."""
    while True:
        header = await stream.read_exactly(8)
        request = header[:4]
        (length,) = _U32.unpack(header[4:])
        if request == b"QUIT":
            return
        if length > MAX_PATH:
            await _fail(stream, "path too long")
            return
        path = (await stream.read_exactly(length)).decode("utf-8", "replace")
        if request == b"STAT":
            node = fs.stat(path)
            if node is None:
                await stream.write(b"STAT" + _STAT_V1.pack(0, 0, 0))
            else:
                await stream.write(b"STAT" + _STAT_V1.pack(node.mode, node.size, node.mtime))
        elif request in (b"STA2", b"LST2"):
            await stream.write(request + _stat_v2(fs.stat(path)))
        elif request == b"LIST":
            await _list(stream, fs, path)
        elif request == b"SEND":
            if not await _receive_file(stream, fs, path):
                return
        elif request == b"RECV":
            await _send_file(stream, fs, path)
        else:
            await _fail(stream, f"unknown sync request {request!r}")
            return


def _stat_v2(node: Node | None) -> bytes:
    if node is None:
        return _STAT_V2.pack(errno.ENOENT, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    return _STAT_V2.pack(
        0, 0xFD00, id(node) & 0xFFFFFFFF, node.mode, 1, _SHELL_UID, _SHELL_UID,
        node.size, node.mtime, node.mtime, node.mtime,
    )


async def _list(stream: Stream, fs: MemoryFs, path: str) -> None:
    try:
        entries = fs.listdir(path)
    except FsError:
        entries = []
    out = bytearray()
    for name, node in [(".", Node(0o40771)), ("..", Node(0o40771)), *entries]:
        raw = name.encode()
        out += b"DENT" + _DENT.pack(node.mode, node.size, node.mtime, len(raw)) + raw
    out += b"DONE" + _DENT.pack(0, 0, 0, 0)
    await stream.write(bytes(out))


async def _receive_file(stream: Stream, fs: MemoryFs, spec: str) -> bool:
    """Handle ``SEND``; returns False if the session must end (protocol error)."""
    path, _, mode_text = spec.rpartition(",")
    if not path:
        path, mode_text = spec, "33188"
    try:
        mode = int(mode_text)
    except ValueError:
        mode = 0o644
    data = bytearray()
    while True:
        header = await stream.read_exactly(8)
        kind = header[:4]
        (value,) = _U32.unpack(header[4:])
        if kind == b"DATA":
            if value > SYNC_DATA_MAX:
                await _fail(stream, "data chunk too large")
                return False
            data += await stream.read_exactly(value)
        elif kind == b"DONE":
            try:
                fs.write(path, bytes(data), mode=mode, mtime=value)
            except FsError as exc:
                await _fail(stream, f"couldn't create file: {exc}")
                return True
            await stream.write(b"OKAY" + _U32.pack(0))
            return True
        else:
            await _fail(stream, f"invalid data message {kind!r}")
            return False


async def _send_file(stream: Stream, fs: MemoryFs, path: str) -> None:
    try:
        data = fs.read(path)
    except FsError as exc:
        await _fail(stream, f"remote object '{path}' does not exist" if
                    str(exc).startswith("No such") else str(exc))
        return
    view = memoryview(data)
    batch = bytearray()
    # Frame DATA chunks into batches of about one max payload: one WRTE round trip each.
    for offset in range(0, len(data), SYNC_DATA_MAX):
        chunk = view[offset : offset + SYNC_DATA_MAX]
        batch += b"DATA" + _U32.pack(len(chunk)) + chunk
        if len(batch) >= stream.conn.max_payload:
            await stream.write(bytes(batch))
            batch.clear()
    batch += b"DONE" + _U32.pack(0)
    await stream.write(bytes(batch))


async def _fail(stream: Stream, message: str) -> None:
    raw = message.encode()
    await stream.write(b"FAIL" + _U32.pack(len(raw)) + raw)
