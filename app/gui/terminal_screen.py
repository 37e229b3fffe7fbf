"""The terminal's character grid: a pyte screen with a compact scrollback.

``pyte.HistoryScreen`` wraps every screen method in a Python-level hook, which
made it 3.4x slower than ``pyte.Screen`` on 1 MB of coloured ``ls`` output
(5.2 s vs 1.5 s measured here), and it keeps scrolled-off lines as one
namedtuple per cell (about 100 MB for 5,000 lines of 120 columns). This screen
overrides only the two places where lines leave the top of the screen
(``index`` and ``resize``) and keeps them as runs of equally-styled text, a few
objects per line.

Nothing here knows about Qt: the widget turns :class:`Style` into colours.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import pyte
from pyte.screens import Char
from wcwidth import wcwidth  # pyte's own dependency: the same width rules

DEFAULT_SCROLLBACK = 5000

# Private DEC modes as pyte stores them (shifted left by 5).
MODE_APP_CURSOR_KEYS = 1 << 5
MODE_BRACKETED_PASTE = 2004 << 5


class Style(NamedTuple):
    """How a run of characters is drawn (pyte's colour names or hex strings)."""

    fg: str = "default"
    bg: str = "default"
    bold: bool = False
    italics: bool = False
    underscore: bool = False
    strikethrough: bool = False
    reverse: bool = False


DEFAULT_STYLE = Style()


class Run(NamedTuple):
    """Characters from ``column`` on, all drawn with one style."""

    column: int
    text: str
    style: Style


Line = tuple[Run, ...]

# Styles are interned so thousands of scrollback runs share a few objects.
_styles: dict[tuple[Any, ...], Style] = {DEFAULT_STYLE: DEFAULT_STYLE}


def _intern(key: tuple[Any, ...]) -> Style:
    style = _styles.get(key)
    if style is None:
        style = _styles[key] = Style(*key)
    return style


def line_runs(line: Mapping[int, Char], columns: int) -> Line:
    """Compress one screen line into runs; trailing unstyled blanks are dropped.

    A double-width character is a run of its own (its glyph spans two cells, so
    it cannot share a run whose characters are placed one per cell). This runs
    for every line that scrolls, so it walks only the cells that exist.
    """
    runs: list[Run] = []
    chunk: list[str] = []
    start = 0
    key: tuple[Any, ...] | None = None
    column = 0  # the next column not yet covered
    after_wide = False

    def flush() -> None:
        if chunk and key is not None:
            runs.append(Run(start, "".join(chunk), _intern(key)))

    for x in sorted(line):
        if x >= columns:
            break
        char = line[x]
        data = char.data
        if not data:  # the stub cell after a double-width character
            continue
        if x > column:  # cells never written are default blanks
            if key != DEFAULT_STYLE or after_wide:
                flush()
                start, chunk, key = column, [], DEFAULT_STYLE
            chunk.append(" " * (x - column))
            after_wide = False
        char_key = char[1:8]  # fg, bg, bold, italics, underscore, strikethrough, reverse
        wide = is_wide(data)
        if char_key != key or wide or after_wide:
            flush()
            start, chunk, key = x, [], char_key
        chunk.append(data)
        after_wide = wide
        column = x + (2 if wide else 1)
    flush()
    while runs and runs[-1].style == DEFAULT_STYLE and not runs[-1].text.strip():
        runs.pop()
    if runs and runs[-1].style == DEFAULT_STYLE:
        last = runs[-1]
        runs[-1] = last._replace(text=last.text.rstrip(" "))
    return tuple(runs)


def line_text(line: Line, start: int = 0, end: int | None = None) -> str:
    """Plain text of a line between two columns (end exclusive), blanks filled."""
    cells: list[str] = []
    for run in line:
        column = run.column
        for ch in run.text:
            if len(cells) < column:
                cells.extend(" " * (column - len(cells)))
            cells.append(ch)
            column += 2 if is_wide(ch) else 1
            if is_wide(ch):
                cells.append("")
    stop = len(cells) if end is None else min(end, len(cells))
    return "".join(cells[start:stop]).rstrip(" ")


def is_wide(ch: str) -> bool:
    """True for a character drawn across two cells (CJK, most emoji)."""
    # Nothing below U+1100 is double-width; skip wcwidth for the common case.
    return ord(ch[0]) >= 0x1100 and wcwidth(ch[0]) == 2


class ScrollbackScreen(pyte.Screen):
    """A pyte screen that keeps lines scrolled off the top in a bounded deque.

    Attributes:
        scrollback: oldest first; at most ``scrollback_lines`` lines.
        pushed: how many lines were ever pushed (lets a view keep its place
            while old lines fall off the front).
    """

    def __init__(
        self,
        columns: int,
        lines: int,
        scrollback_lines: int = DEFAULT_SCROLLBACK,
        reply: Callable[[str], None] | None = None,
    ) -> None:
        self.scrollback: deque[Line] = deque(maxlen=max(1, scrollback_lines))
        self.pushed = 0
        self._reply = reply
        super().__init__(columns, lines)

    def row(self, y: int) -> Line:
        """Runs of the visible row ``y`` (0 = top of the screen)."""
        return line_runs(self.buffer[y], self.columns) if y in self.buffer else ()

    def index(self) -> None:
        # Like xterm, only a full-screen scroll feeds the scrollback: a
        # scrolling region (vim, less) moves lines that are not history.
        top, bottom = self.margins or pyte.screens.Margins(0, self.lines - 1)
        if self.cursor.y == bottom and top == 0:
            self._push([self.buffer.get(0, {})])
        super().index()

    def erase_in_display(self, how: int = 0, *args: Any, **kwargs: Any) -> None:
        super().erase_in_display(how, *args, **kwargs)
        if how == 3:  # "clear scrollback" (what `clear` sends)
            self.scrollback.clear()

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        """Resize keeping the cursor's line: rows above it go to the scrollback.

        pyte's own resize drops the top rows when the screen shrinks; a
        terminal operator expects them in the scrollback instead.
        """
        lines = lines or self.lines
        columns = columns or self.columns
        if lines == self.lines and columns == self.columns:
            return
        if lines < self.lines:
            drop = max(0, self.cursor.y + 1 - lines)
            if drop:
                self._push([self.buffer.get(y, {}) for y in range(drop)])
                kept = {y - drop: self.buffer[y] for y in range(drop, self.lines)
                        if y in self.buffer}
                self.buffer.clear()
                self.buffer.update(kept)
                self.cursor.y -= drop
            for y in [y for y in self.buffer if y >= lines]:
                del self.buffer[y]
        if columns < self.columns:
            for line in self.buffer.values():
                for x in range(columns, self.columns):
                    line.pop(x, None)
        self.lines, self.columns = lines, columns
        self.dirty.update(range(lines))
        self.set_margins()
        self.cursor.x = min(self.cursor.x, columns - 1)
        self.cursor.y = min(self.cursor.y, lines - 1)

    def write_process_input(self, data: str) -> None:
        """Answers to the remote's queries (cursor position, device attributes)."""
        if self._reply is not None:
            self._reply(data)

    def _push(self, lines: Iterable[Mapping[int, Char]]) -> None:
        for line in lines:
            self.scrollback.append(line_runs(line, self.columns))
            self.pushed += 1
