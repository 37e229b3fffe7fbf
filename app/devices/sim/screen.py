"""The simulated screen: a PNG drawn in pure Python (zlib + struct).

Each phone gets its own background colour (from its serial), a status bar with
serial and battery, its model name in large letters, and the app in the
foreground, so screenshots of different phones are told apart at a glance.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from hashlib import sha256

RGB = tuple[int, int, int]

# A 5x7 pixel font: each glyph is seven rows of five bits.
_FONT_ROWS: dict[str, str] = {
    "A": "01110 10001 10001 11111 10001 10001 10001",
    "B": "11110 10001 10001 11110 10001 10001 11110",
    "C": "01110 10001 10000 10000 10000 10001 01110",
    "D": "11110 10001 10001 10001 10001 10001 11110",
    "E": "11111 10000 10000 11110 10000 10000 11111",
    "F": "11111 10000 10000 11110 10000 10000 10000",
    "G": "01110 10001 10000 10111 10001 10001 01111",
    "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110",
    "J": "00111 00010 00010 00010 00010 10010 01100",
    "K": "10001 10010 10100 11000 10100 10010 10001",
    "L": "10000 10000 10000 10000 10000 10000 11111",
    "M": "10001 11011 10101 10101 10001 10001 10001",
    "N": "10001 10001 11001 10101 10011 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110",
    "P": "11110 10001 10001 11110 10000 10000 10000",
    "Q": "01110 10001 10001 10001 10101 10010 01101",
    "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110",
    "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110",
    "V": "10001 10001 10001 10001 10001 01010 00100",
    "W": "10001 10001 10001 10101 10101 10101 01010",
    "X": "10001 10001 01010 00100 01010 10001 10001",
    "Y": "10001 10001 10001 01010 00100 00100 00100",
    "Z": "11111 00001 00010 00100 01000 10000 11111",
    "0": "01110 10001 10011 10101 11001 10001 01110",
    "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111",
    "3": "11111 00010 00100 00010 00001 10001 01110",
    "4": "00010 00110 01010 10010 11111 00010 00010",
    "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110",
    "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110",
    "9": "01110 10001 10001 01111 00001 00010 01100",
    ".": "00000 00000 00000 00000 00000 01100 01100",
    "-": "00000 00000 00000 11111 00000 00000 00000",
    ":": "00000 01100 01100 00000 01100 01100 00000",
    "%": "11000 11001 00010 00100 01000 10011 00011",
    "_": "00000 00000 00000 00000 00000 00000 11111",
    "/": "00000 00001 00010 00100 01000 10000 00000",
    " ": "00000 00000 00000 00000 00000 00000 00000",
}
_FONT: dict[str, list[list[int]]] = {
    ch: [[i for i, bit in enumerate(row) if bit == "1"] for row in rows.split()]
    for ch, rows in _FONT_ROWS.items()
}
_GLYPH_W, _GLYPH_H = 6, 8  # 5x7 plus one pixel of spacing


class Canvas:
    """An RGB framebuffer with just enough drawing for the sim screen."""

    def __init__(self, width: int, height: int, background: RGB) -> None:
        self.width = width
        self.height = height
        self._pixels = bytearray(bytes(background) * (width * height))

    def fill_rect(self, x: int, y: int, w: int, h: int, color: RGB) -> None:
        x0, x1 = max(0, x), min(self.width, x + w)
        if x1 <= x0:
            return
        span = bytes(color) * (x1 - x0)
        for row in range(max(0, y), min(self.height, y + h)):
            start = (row * self.width + x0) * 3
            self._pixels[start : start + len(span)] = span

    def text(self, x: int, y: int, text: str, color: RGB, scale: int = 2) -> None:
        for index, ch in enumerate(text.upper()):
            glyph = _FONT.get(ch, _FONT["_"])
            gx = x + index * _GLYPH_W * scale
            for gy, columns in enumerate(glyph):
                for column in columns:
                    self.fill_rect(gx + column * scale, y + gy * scale, scale, scale, color)

    def text_centered(self, y: int, text: str, color: RGB, scale: int) -> None:
        max_chars = max(1, self.width // (_GLYPH_W * scale))
        text = text[:max_chars]
        width = len(text) * _GLYPH_W * scale - scale
        self.text((self.width - width) // 2, y, text, color, scale)

    def png(self) -> bytes:
        stride = self.width * 3
        raw = b"".join(
            b"\x00" + bytes(self._pixels[row * stride : (row + 1) * stride])
            for row in range(self.height)
        )
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return b"".join(
            (
                b"\x89PNG\r\n\x1a\n",
                _chunk(b"IHDR", header),
                _chunk(b"IDAT", zlib.compress(raw, 6)),
                _chunk(b"IEND", b""),
            )
        )


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def phone_colour(serial_no: str) -> RGB:
    """A pleasant, distinct background colour per phone."""
    digest = sha256(serial_no.encode()).digest()
    return (90 + digest[0] % 140, 90 + digest[1] % 140, 90 + digest[2] % 140)


def render_screen(
    width: int,
    height: int,
    *,
    serial_no: str,
    model: str,
    battery_level: int,
    foreground: str | None,
    lines: Iterable[str] = (),
) -> bytes:
    """The PNG of a phone's screen."""
    background = phone_colour(serial_no)
    dark: RGB = tuple(c // 3 for c in background)  # type: ignore[assignment]
    white: RGB = (255, 255, 255)
    canvas = Canvas(width, height, background)
    canvas.fill_rect(0, 0, width, 28, dark)
    canvas.text(8, 7, serial_no, white, 2)
    level = f"{battery_level}%"
    canvas.text(width - 8 - len(level) * _GLYPH_W * 2, 7, level, white, 2)
    canvas.fill_rect(0, height // 3, width, 120, dark)
    canvas.text_centered(height // 3 + 18, model, white, 4)
    canvas.text_centered(height // 3 + 78, "TASKDESK SIM", background, 2)
    canvas.text_centered(height // 3 + 150, foreground or "HOME", dark, 2)
    for index, line in enumerate(lines):
        canvas.text_centered(height // 3 + 190 + index * 20, line, dark, 2)
    canvas.fill_rect(0, height - 40, width, 40, dark)
    canvas.fill_rect(width // 2 - 20, height - 26, 40, 12, white)
    return canvas.png()
