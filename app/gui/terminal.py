"""A VT100/xterm terminal widget over pyte, for shells on phones and agents.

The widget only turns bytes into pixels and keystrokes into bytes: whoever
owns the session (``adb shell``, an agent's web shell) connects ``send_bytes``
and ``resized`` to the remote and calls :meth:`TerminalWidget.feed` with what
comes back. It knows nothing about adb.

Output is parsed in time slices (a burst of megabytes never freezes the event
loop) and the screen is repainted by a timer at most ~60 times a second, only
the rows pyte marked dirty unless the content scrolled.
"""

from __future__ import annotations

import math
import time
from collections import deque

import pyte
from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QClipboard,
    QColor,
    QFocusEvent,
    QFont,
    QFontDatabase,
    QFontMetricsF,
    QGuiApplication,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QRegion,
    QResizeEvent,
    QShowEvent,
)
from PySide6.QtWidgets import QAbstractScrollArea, QFrame, QWidget
from pyte.graphics import FG_BG_256

from app.gui.terminal_keys import key_to_bytes
from app.gui.terminal_screen import (
    DEFAULT_SCROLLBACK,
    MODE_APP_CURSOR_KEYS,
    MODE_BRACKETED_PASTE,
    Line,
    ScrollbackScreen,
    Style,
    is_wide,
    line_text,
)
from app.gui.theme import ansi_colors

FEED_CHUNK = 4096  # bytes handed to pyte at a time
FEED_SLICE_S = 0.008  # parse for at most this long per event-loop turn
REPAINT_INTERVAL_MS = 16  # ~60 frames per second at most
_MARGINS = (4, 2, 0, 2)  # left, top, right, bottom around the character grid

_ANSI_NAMES = {"black": 0, "red": 1, "green": 2, "brown": 3, "blue": 4,
               "magenta": 5, "cyan": 6, "white": 7}
_ANSI_HEX = {value: index for index, value in enumerate(FG_BG_256[:16])}


class TerminalWidget(QAbstractScrollArea):
    """A terminal emulator view: feed it the remote's output, send what it emits.

    Signals:
        send_bytes(bytes): keystrokes, pastes and answers to terminal queries,
            to be written to the remote.
        resized(int, int): the character grid changed to (columns, rows).
        title_changed(str): the remote set the window title.
    """

    send_bytes = Signal(bytes)
    resized = Signal(int, int)
    title_changed = Signal(str)

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        columns: int = 80,
        rows: int = 24,
        scrollback_lines: int = DEFAULT_SCROLLBACK,
    ) -> None:
        super().__init__(parent)
        self._screen = ScrollbackScreen(columns, rows, scrollback_lines, self._on_screen_reply)
        self._stream = pyte.ByteStream(self._screen)
        self._pending: deque[bytes] = deque()
        self._seen_pushed = 0
        self._title = ""
        self._colours: dict[tuple[str, bool], QColor] = {}
        self._fonts: dict[tuple[bool, bool, bool, bool], QFont] = {}
        self._selection: tuple[tuple[int, int], tuple[int, int]] | None = None
        self._selecting = False
        self._last_cursor_row = 0
        self.paint_count = 0
        self._setup_ui()

    # -- public API ---------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Queue output from the remote; it is parsed and painted shortly after."""
        if not data:
            return
        for start in range(0, len(data), FEED_CHUNK):
            self._pending.append(data[start:start + FEED_CHUNK])
        if not self._feed_timer.isActive():
            self._feed_timer.start()

    def pending_bytes(self) -> int:
        """Bytes fed but not parsed yet."""
        return sum(len(chunk) for chunk in self._pending)

    def grid_size(self) -> tuple[int, int]:
        """The character grid as (columns, rows)."""
        return self._screen.columns, self._screen.lines

    def scrollback_size(self) -> int:
        """Lines kept above the screen."""
        return len(self._screen.scrollback)

    def screen_lines(self) -> list[str]:
        """Plain text of the screen rows (not the scrollback), top to bottom."""
        return [line_text(self._screen.row(y)) for y in range(self._screen.lines)]

    def visible_lines(self) -> list[str]:
        """Plain text of the rows as displayed now (honours scrolling back)."""
        top = self.verticalScrollBar().value()
        return [line_text(self._line_at(top + r)) for r in range(self._screen.lines)]

    def scroll_to_bottom(self) -> None:
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def select(self, start: tuple[int, int], end: tuple[int, int]) -> None:
        """Select from (view row, column) to (view row, column), end inclusive."""
        self._selection = (self._absolute(*start), self._absolute(*end))
        self.viewport().update()

    def clear_selection(self) -> None:
        self._selection = None
        self.viewport().update()

    def selected_text(self) -> str:
        """The selected text, one line per row, trailing blanks trimmed."""
        if self._selection is None:
            return ""
        (line_a, col_a), (line_b, col_b) = sorted(self._selection)
        base = self._screen.pushed - len(self._screen.scrollback)
        out: list[str] = []
        for absolute in range(line_a, line_b + 1):
            index = absolute - base
            if index < 0:
                continue
            first = col_a if absolute == line_a else 0
            last = col_b + 1 if absolute == line_b else None
            out.append(line_text(self._line_at(index), first, last))
        return "\n".join(out)

    def copy(self) -> None:
        """Put the selection on the clipboard (Ctrl+Shift+C)."""
        text = self.selected_text()
        if text:
            QGuiApplication.clipboard().setText(text)

    def paste(self, mode: QClipboard.Mode = QClipboard.Mode.Clipboard) -> None:
        """Send the clipboard's text to the remote (Ctrl+Shift+V)."""
        text = QGuiApplication.clipboard().text(mode)
        if not text:
            return
        # A terminal sends Enter as CR; bracketed paste lets shells tell a paste
        # from typing (so a pasted newline does not run a command by itself).
        data = text.replace("\r\n", "\r").replace("\n", "\r").encode("utf-8")
        if MODE_BRACKETED_PASTE in self._screen.mode:
            data = b"\x1b[200~" + data + b"\x1b[201~"
        self.scroll_to_bottom()
        self.send_bytes.emit(data)

    # -- set-up and slots ---------------------------------------------------

    def _setup_ui(self) -> None:
        self.setFrameShape(QFrame.Shape.NoFrame)
        # A little air around the grid, painted in the terminal's background.
        self.setViewportMargins(*_MARGINS)
        self.setBackgroundRole(QPalette.ColorRole.Base)
        self.setAutoFillBackground(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.viewport().setCursor(Qt.CursorShape.IBeamCursor)
        self.viewport().setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setAttribute(Qt.WidgetAttribute.WA_InputMethodEnabled, False)
        self.verticalScrollBar().setRange(0, 0)
        self._feed_timer = QTimer(self)
        self._feed_timer.setSingleShot(True)
        self._feed_timer.setInterval(0)
        self._feed_timer.timeout.connect(self._on_feed_timer_timeout)
        self._paint_timer = QTimer(self)
        self._paint_timer.setSingleShot(True)
        self._paint_timer.setInterval(REPAINT_INTERVAL_MS)
        self._paint_timer.timeout.connect(self._on_paint_timer_timeout)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self._update_metrics()

    def _on_screen_reply(self, data: str) -> None:
        self.send_bytes.emit(data.encode("utf-8"))

    def _on_feed_timer_timeout(self) -> None:
        deadline = time.perf_counter() + FEED_SLICE_S
        while self._pending and time.perf_counter() < deadline:
            self._stream.feed(self._pending.popleft())
        if self._screen.title != self._title:
            self._title = self._screen.title
            self.title_changed.emit(self._title)
        if not self._paint_timer.isActive():
            self._paint_timer.start()
        if self._pending:
            self._feed_timer.start()

    def _on_paint_timer_timeout(self) -> None:
        screen = self._screen
        bar = self.verticalScrollBar()
        pushed = screen.pushed - self._seen_pushed
        self._seen_pushed = screen.pushed
        at_bottom = bar.value() >= bar.maximum()
        dropped = max(0, pushed - (len(screen.scrollback) - bar.maximum()))
        keep = bar.value() - dropped
        bar.setRange(0, len(screen.scrollback))
        bar.setPageStep(screen.lines)
        bar.setValue(bar.maximum() if at_bottom else max(0, keep))
        top = bar.value()
        rows = set(screen.dirty) | {self._last_cursor_row, screen.cursor.y}
        screen.dirty.clear()
        self._last_cursor_row = screen.cursor.y
        if pushed and (at_bottom or top < len(screen.scrollback)):
            self.viewport().update()  # the content moved: everything is new
            return
        region = QRegion()
        offset = len(screen.scrollback) - top  # view row of screen row 0
        for row in rows:
            view_row = row + offset
            if 0 <= view_row < screen.lines:
                region += QRect(0, view_row * self._cell_h, self.viewport().width(), self._cell_h)
        if not region.isEmpty():
            self.viewport().update(region)

    # -- geometry and colours -------------------------------------------------

    def _update_metrics(self) -> None:
        # Fractional advance: a run drawn as one string advances by exactly
        # len(run) * the glyph advance, so cells must use the same unrounded width.
        metrics = QFontMetricsF(self.font())
        self._cell_w = max(1.0, metrics.horizontalAdvance("M"))
        self._cell_h = max(1, math.ceil(metrics.height()))
        self._ascent = metrics.ascent()
        self._fonts.clear()

    def _fit_grid(self) -> None:
        if not self.isVisible():
            # A hidden widget has no real size yet (Qt delivers the pending
            # resize on show): keep the grid it was created with until then.
            return
        columns = max(2, int(self.viewport().width() / self._cell_w))
        rows = max(1, self.viewport().height() // self._cell_h)
        if (columns, rows) == self.grid_size():
            return
        self._screen.resize(rows, columns)
        self._on_paint_timer_timeout()  # rows pushed to the scrollback, new range
        self.viewport().update()
        self.resized.emit(columns, rows)

    def _line_at(self, index: int) -> Line:
        """Line ``index`` of scrollback followed by screen (0 = oldest kept)."""
        scrollback = self._screen.scrollback
        if index < len(scrollback):
            return scrollback[index] if index >= 0 else ()
        row = index - len(scrollback)
        return self._screen.row(row) if row < self._screen.lines else ()

    def _absolute(self, view_row: int, column: int) -> tuple[int, int]:
        """A view position as (line number since the first line ever, column)."""
        base = self._screen.pushed - len(self._screen.scrollback)
        return base + self.verticalScrollBar().value() + view_row, column

    def _cell_at(self, point: QPoint) -> tuple[int, int]:
        row = min(max(0, point.y() // self._cell_h), self._screen.lines - 1)
        column = min(max(0, int(point.x() / self._cell_w)), self._screen.columns - 1)
        return row, column

    def _colour(self, name: str, foreground: bool) -> QColor:
        key = (name, foreground)
        colour = self._colours.get(key)
        if colour is None:
            colour = self._colours[key] = self._resolve_colour(name, foreground)
        return colour

    def _resolve_colour(self, name: str, foreground: bool) -> QColor:
        palette = self.palette()
        if name == "default":
            role = QPalette.ColorRole.Text if foreground else QPalette.ColorRole.Base
            return palette.color(role)
        index = _ANSI_NAMES.get(name)
        if index is None and name.startswith("b") and name[6:] in _ANSI_NAMES:
            index = 8 + _ANSI_NAMES[name[6:]]  # "bright…" (and pyte's "bfightmagenta")
        if index is None:
            index = _ANSI_HEX.get(name.lower())
        if index is not None:
            return ansi_colors(palette)[index]
        colour = QColor(f"#{name}")
        return colour if colour.isValid() else palette.color(QPalette.ColorRole.Text)

    def _font_for(self, style: Style) -> QFont:
        key = (style.bold, style.italics, style.underscore, style.strikethrough)
        font = self._fonts.get(key)
        if font is None:
            font = QFont(self.font())
            font.setBold(style.bold)
            font.setItalic(style.italics)
            font.setUnderline(style.underscore)
            font.setStrikeOut(style.strikethrough)
            self._fonts[key] = font
        return font

    # -- painting ---------------------------------------------------------------

    def _paint_line(self, painter: QPainter, row: int, line: Line) -> None:
        y = row * self._cell_h
        default_bg = self._colour("default", False)
        for run in line:
            fg = self._colour(run.style.fg, True)
            bg = self._colour(run.style.bg, False)
            if run.style.reverse:
                fg, bg = bg, fg
            cells = 2 if len(run.text) == 1 and is_wide(run.text) else len(run.text)
            rect = QRectF(run.column * self._cell_w, y, cells * self._cell_w, self._cell_h)
            if bg != default_bg:
                painter.fillRect(rect, bg)
            painter.setPen(fg)
            painter.setFont(self._font_for(run.style))
            painter.drawText(QPointF(rect.x(), y + self._ascent), run.text)

    def _paint_selection(self, painter: QPainter, row: int, line: Line, top: int) -> None:
        if self._selection is None:
            return
        (line_a, col_a), (line_b, col_b) = sorted(self._selection)
        absolute = self._screen.pushed - len(self._screen.scrollback) + top + row
        if not line_a <= absolute <= line_b:
            return
        first = col_a if absolute == line_a else 0
        last = col_b if absolute == line_b else self._screen.columns - 1
        rect = QRectF(first * self._cell_w, row * self._cell_h,
                      (last - first + 1) * self._cell_w, self._cell_h)
        palette = self.palette()
        painter.save()
        painter.setClipRect(rect)
        painter.fillRect(rect, palette.color(QPalette.ColorRole.Highlight))
        text_colour = palette.color(QPalette.ColorRole.HighlightedText)
        for run in line:
            painter.setPen(text_colour)
            painter.setFont(self._font_for(run.style))
            painter.drawText(
                QPointF(run.column * self._cell_w, row * self._cell_h + self._ascent), run.text
            )
        painter.restore()

    def _paint_cursor(self, painter: QPainter, top: int) -> None:
        screen = self._screen
        if screen.cursor.hidden or top != len(screen.scrollback):
            return  # hidden by the remote, or the operator is reading history
        x, y = min(screen.cursor.x, screen.columns - 1), screen.cursor.y
        rect = QRectF(x * self._cell_w, y * self._cell_h, self._cell_w, self._cell_h)
        fg = self._colour("default", True)
        if not self.hasFocus():
            painter.setPen(fg)
            painter.drawRect(rect.adjusted(0.5, 0.5, -0.5, -0.5))
            return
        painter.fillRect(rect, fg)
        char = screen.buffer[y].get(x) if y in screen.buffer else None
        if char is not None and char.data.strip():
            painter.setPen(self._colour("default", False))
            painter.setFont(self._font_for(Style(bold=char.bold, italics=char.italics)))
            painter.drawText(QPointF(rect.x(), rect.y() + self._ascent), char.data)

    # -- Qt overrides -------------------------------------------------------------

    def sizeHint(self) -> QSize:
        bar = self.verticalScrollBar().sizeHint().width()
        left, top, right, bottom = _MARGINS
        return QSize(math.ceil(80 * self._cell_w) + bar + left + right,
                     24 * self._cell_h + top + bottom)

    def paintEvent(self, event: QPaintEvent) -> None:
        self.paint_count += 1
        painter = QPainter(self.viewport())
        area = event.rect()
        painter.fillRect(area, self._colour("default", False))
        top = self.verticalScrollBar().value()
        first = max(0, area.top() // self._cell_h)
        last = min(self._screen.lines - 1, area.bottom() // self._cell_h)
        for row in range(first, last + 1):
            line = self._line_at(top + row)
            self._paint_line(painter, row, line)
            self._paint_selection(painter, row, line, top)
        self._paint_cursor(painter, top)
        painter.end()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._fit_grid()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_grid()

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        self.viewport().update()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._colours.clear()
            self.viewport().update()
        elif event.type() == QEvent.Type.FontChange:
            self._update_metrics()
            self._fit_grid()
        super().changeEvent(event)

    def focusInEvent(self, event: QFocusEvent) -> None:
        super().focusInEvent(event)
        self.viewport().update()  # the cursor turns from an outline into a block

    def focusOutEvent(self, event: QFocusEvent) -> None:
        super().focusOutEvent(event)
        self.viewport().update()

    def focusNextPrevChild(self, next: bool) -> bool:  # noqa: A002
        return False  # Tab belongs to the shell (completion), not to focus chains

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            mods = event.modifiers()
            plain_ctrl = (mods & Qt.KeyboardModifier.ControlModifier) and not (
                mods & Qt.KeyboardModifier.ShiftModifier
            )
            if plain_ctrl or event.key() == Qt.Key.Key_Escape:
                event.accept()  # Ctrl+C, Ctrl+W… go to the shell, not to window shortcuts
                return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        mods = event.modifiers()
        ctrl_shift = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
        key = event.key()
        if (mods & ctrl_shift) == ctrl_shift and key in (Qt.Key.Key_C, Qt.Key.Key_V):
            self.copy() if key == Qt.Key.Key_C else self.paste()
            return
        if mods & Qt.KeyboardModifier.ShiftModifier and key in (
            Qt.Key.Key_PageUp, Qt.Key.Key_PageDown
        ):
            bar = self.verticalScrollBar()
            step = -bar.pageStep() if key == Qt.Key.Key_PageUp else bar.pageStep()
            bar.setValue(bar.value() + step)
            return
        data = key_to_bytes(
            key, mods, event.text(), app_cursor=MODE_APP_CURSOR_KEYS in self._screen.mode
        )
        if data is None:
            super().keyPressEvent(event)
            return
        self.scroll_to_bottom()
        self.send_bytes.emit(data)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            cell = self._absolute(*self._cell_at(event.position().toPoint()))
            self._selection = (cell, cell)
            self._selecting = True
            self.viewport().update()
        elif event.button() == Qt.MouseButton.MiddleButton:
            clipboard = QGuiApplication.clipboard()
            mode = (QClipboard.Mode.Selection if clipboard.supportsSelection()
                    else QClipboard.Mode.Clipboard)
            self.paste(mode)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._selecting and self._selection is not None:
            cell = self._absolute(*self._cell_at(event.position().toPoint()))
            self._selection = (self._selection[0], cell)
            self.viewport().update()
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._selecting:
            self._selecting = False
            if self._selection is not None and self._selection[0] == self._selection[1]:
                self._selection = None  # a click, not a drag
                self.viewport().update()
            clipboard = QGuiApplication.clipboard()
            if self._selection is not None and clipboard.supportsSelection():
                clipboard.setText(self.selected_text(), QClipboard.Mode.Selection)
        event.accept()
