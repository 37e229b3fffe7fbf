"""The adb *device* transport wire format (what adbd speaks to the adb server).

Every message is a 24-byte little-endian header followed by ``data_length``
bytes of payload::

    command, arg0, arg1, data_length, data_check, magic (= command ^ 0xffffffff)

``data_check`` is the byte sum of the payload for protocol version
0x01000000; from 0x01000001 on it may be zero and is not verified, which is
what every adb of the last decade negotiates.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

A_SYNC = 0x434E5953
A_CNXN = 0x4E584E43
A_AUTH = 0x48545541
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_STLS = 0x534C5453

COMMAND_NAMES = {
    A_SYNC: "SYNC",
    A_CNXN: "CNXN",
    A_AUTH: "AUTH",
    A_OPEN: "OPEN",
    A_OKAY: "OKAY",
    A_CLSE: "CLSE",
    A_WRTE: "WRTE",
    A_STLS: "STLS",
}

VERSION_MIN = 0x01000000
VERSION_SKIP_CHECKSUM = 0x01000001
# What we answer with: the newest version real adbd reports.
DEVICE_VERSION = VERSION_SKIP_CHECKSUM
# adbd's MAX_PAYLOAD since Android P; the host offers the same.
DEVICE_MAX_PAYLOAD = 1024 * 1024
MAX_PAYLOAD_V1 = 4096

AUTH_TOKEN = 1
AUTH_SIGNATURE = 2
AUTH_RSAPUBLICKEY = 3
AUTH_TOKEN_SIZE = 20

HEADER = struct.Struct("<6I")
HEADER_SIZE = HEADER.size  # 24


class ProtocolError(Exception):
    """The peer sent something that is not a valid adb message."""


@dataclass(frozen=True)
class Message:
    """One decoded adb message."""

    command: int
    arg0: int
    arg1: int
    payload: bytes = b""

    @property
    def name(self) -> str:
        return COMMAND_NAMES.get(self.command, f"0x{self.command:08x}")


def checksum(payload: bytes) -> int:
    """The legacy data check: the unsigned byte sum of the payload."""
    return sum(payload) & 0xFFFFFFFF


def encode(message: Message, *, with_checksum: bool) -> bytes:
    """Serialise a message; ``with_checksum`` for peers older than 0x01000001."""
    check = checksum(message.payload) if with_checksum else 0
    header = HEADER.pack(
        message.command,
        message.arg0,
        message.arg1,
        len(message.payload),
        check,
        message.command ^ 0xFFFFFFFF,
    )
    return header + message.payload


def decode_header(raw: bytes, max_payload: int) -> tuple[int, int, int, int, int]:
    """Validate a 24-byte header.

    Returns:
        ``(command, arg0, arg1, data_length, data_check)``.

    Raises:
        ProtocolError: bad magic, unknown command or oversized payload.
    """
    command, arg0, arg1, length, check, magic = HEADER.unpack(raw)
    if magic != command ^ 0xFFFFFFFF:
        raise ProtocolError(f"bad magic for command 0x{command:08x}")
    if command not in COMMAND_NAMES:
        raise ProtocolError(f"unknown command 0x{command:08x}")
    if length > max_payload:
        raise ProtocolError(f"payload of {length} bytes exceeds {max_payload}")
    return command, arg0, arg1, length, check
