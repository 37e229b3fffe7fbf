"""Cap command output to a head and a tail with an explicit omitted marker."""

from __future__ import annotations

DEFAULT_CAP = 64 * 1024


def cap_bytes(data: bytes, limit: int = DEFAULT_CAP) -> tuple[bytes, int]:
    """Keep the first and last ``limit // 2`` bytes; return (kept, omitted_count)."""
    if limit <= 0 or len(data) <= limit:
        return data, 0
    half = limit // 2
    omitted = len(data) - 2 * half
    marker = f"\n[... {omitted} bytes omitted ...]\n".encode()
    return data[:half] + marker + data[-half:], omitted


def cap_text(data: bytes, limit: int = DEFAULT_CAP) -> str:
    kept, _ = cap_bytes(data, limit)
    return kept.decode("utf-8", errors="replace")


class HeadTailBuffer:
    """Accumulates a stream keeping at most ``limit`` bytes (head + tail).

    Counts everything that passed through, so the omitted amount is exact even
    when the stream is far larger than memory should hold.
    """

    def __init__(self, limit: int = DEFAULT_CAP) -> None:
        self.limit = limit
        self._half = max(1, limit // 2)
        self._head = bytearray()
        self._tail = bytearray()
        self.total = 0

    def write(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self._half - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self._tail += chunk
            if len(self._tail) > self._half:
                del self._tail[: len(self._tail) - self._half]

    @property
    def omitted(self) -> int:
        return max(0, self.total - len(self._head) - len(self._tail))

    def getvalue(self) -> bytes:
        if self.omitted == 0:
            return bytes(self._head + self._tail)
        marker = f"\n[... {self.omitted} bytes omitted ...]\n".encode()
        return bytes(self._head) + marker + bytes(self._tail)

    def text(self) -> str:
        return self.getvalue().decode("utf-8", errors="replace")
