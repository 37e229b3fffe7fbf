"""The terminal widget: VT parsing, keys, resize, clipboard, scrollback, burst output."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pyte
import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPalette
from PySide6.QtWidgets import QApplication

from app.gui.terminal import TerminalWidget
from app.gui.terminal_keys import key_to_bytes
from app.gui.terminal_screen import ScrollbackScreen, line_text
from app.gui.theme import ansi_colors

Mod = Qt.KeyboardModifier

LS_OUTPUT = (
    "\x1b]0;shell@pixel-7\x07"
    "\x1b[1;32mshell@pixel-7\x1b[0m:\x1b[1;34m/sdcard\x1b[0m $ ls --color -l\r\n"
    "total 48\r\n"
    "drwxrwx--x 2 root sdcard_rw 4096 2024-05-01 10:02 \x1b[1;34mAlarms\x1b[0m\r\n"
    "drwxrwx--x 5 root sdcard_rw 4096 2024-05-02 09:11 \x1b[1;34mAndroid\x1b[0m\r\n"
    "-rwxrwx--x 1 root sdcard_rw 1024 2024-05-03 18:40 \x1b[1;32mcapture.sh\x1b[0m\r\n"
    "lrwxrwxrwx 1 root root        21 2024-05-03 18:41 \x1b[1;36mlatest\x1b[0m"
    " -> /sdcard/DCIM/Camera\r\n"
    "-rw-rw---- 1 root sdcard_rw 8820 2024-05-04 07:15 \x1b[1;31mlogs.tar.gz\x1b[0m\r\n"
    "-rw-rw---- 1 root sdcard_rw  512 2024-05-04 07:16 notes.txt\r\n"
    "\x1b[30;43m WARN \x1b[0m battery 14% \x1b[7m reverse \x1b[0m \x1b[4munderlined\x1b[0m"
    " \x1b[3mitalic\x1b[0m\r\n"
    + "".join(f"\x1b[{30 + i}m\u2588\u2588 {i} \x1b[0m" for i in range(8)) + "\r\n"
    + "".join(f"\x1b[{90 + i}m\u2588\u2588 {i + 8} \x1b[0m" for i in range(8)) + "\r\n"
    "\x1b[38;5;208m256-colour orange\x1b[0m \x1b[38;2;80;160;255mtruecolour blue\x1b[0m"
    "  \u2713 done\r\n"
    "\x1b[1;32mshell@pixel-7\x1b[0m:\x1b[1;34m/sdcard\x1b[0m $ getprop ro.product.model\r\n"
    "Pixel 7\r\n"
    "\x1b[1;32mshell@pixel-7\x1b[0m:\x1b[1;34m/sdcard\x1b[0m $ "
)


@pytest.fixture
def term(qtbot) -> TerminalWidget:
    widget = TerminalWidget()
    qtbot.addWidget(widget)
    widget.resize(widget.sizeHint())
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _feed_and_settle(qtbot, term: TerminalWidget, data: bytes) -> None:
    term.feed(data)
    qtbot.waitUntil(lambda: term.pending_bytes() == 0, timeout=10_000)
    qtbot.wait(40)  # let the coalescing repaint timer fire


def _cell_image(term: TerminalWidget, row: int, column: int, cells: int = 1) -> QImage:
    image = term.viewport().grab().toImage()
    w, h = term._cell_w, term._cell_h
    return image.copy(int(column * w), row * h, int(cells * w), h)


def _has_colour(image: QImage, colour: QColor, tolerance: int = 40) -> bool:
    for y in range(image.height()):
        for x in range(image.width()):
            pixel = image.pixelColor(x, y)
            if (abs(pixel.red() - colour.red()) + abs(pixel.green() - colour.green())
                    + abs(pixel.blue() - colour.blue())) <= tolerance:
                return True
    return False


def test_coloured_output_is_parsed_and_painted_with_palette_colours(
    qtbot, term: TerminalWidget, themed, grab_dir: Path
) -> None:
    themed("dark")
    with qtbot.waitSignal(term.title_changed) as title:
        _feed_and_settle(qtbot, term, LS_OUTPUT.encode())
    assert title.args == ["shell@pixel-7"]
    lines = term.screen_lines()
    assert lines[2] == "drwxrwx--x 2 root sdcard_rw 4096 2024-05-01 10:02 Alarms"
    assert lines[13] == "Pixel 7"
    palette = term.palette()
    # "Alarms" (SGR 34) is painted in the palette's ANSI blue, the rest of the
    # line in the default foreground, the empty area in the default background.
    alarms_col = lines[2].index("Alarms")
    blue = ansi_colors(palette)[4]
    assert _has_colour(_cell_image(term, 2, alarms_col, 6), blue)
    assert not _has_colour(_cell_image(term, 2, 0, 10), blue)
    empty = _cell_image(term, 20, 40, 4)
    assert empty.pixelColor(1, 1) == palette.color(QPalette.ColorRole.Base)
    # Red background of " WARN " comes from the 16-colour table (brown = yellow).
    assert _has_colour(_cell_image(term, 8, 1, 3), ansi_colors(palette)[3])
    term.grab().save(str(grab_dir / "terminal.png"))


def test_keystrokes_are_sent_as_vt_sequences(qtbot, term: TerminalWidget) -> None:
    sent: list[bytes] = []
    term.send_bytes.connect(sent.append)
    term.setFocus()
    presses = [
        (Qt.Key.Key_A, Mod.NoModifier, b"a"),
        (Qt.Key.Key_Return, Mod.NoModifier, b"\r"),
        (Qt.Key.Key_Backspace, Mod.NoModifier, b"\x7f"),
        (Qt.Key.Key_Tab, Mod.NoModifier, b"\t"),
        (Qt.Key.Key_Up, Mod.NoModifier, b"\x1b[A"),
        (Qt.Key.Key_Left, Mod.NoModifier, b"\x1b[D"),
        (Qt.Key.Key_C, Mod.ControlModifier, b"\x03"),
        (Qt.Key.Key_D, Mod.ControlModifier, b"\x04"),
        (Qt.Key.Key_Escape, Mod.NoModifier, b"\x1b"),
        (Qt.Key.Key_Delete, Mod.NoModifier, b"\x1b[3~"),
        (Qt.Key.Key_Right, Mod.ControlModifier, b"\x1b[1;5C"),
    ]
    for key, mods, expected in presses:
        sent.clear()
        qtbot.keyClick(term, key, mods)
        assert sent == [expected], (key, mods)
    # Tab stays in the terminal instead of moving the focus away.
    assert term.hasFocus() or not QApplication.focusWidget()
    # Application cursor mode (vim, less) switches arrows to SS3.
    _feed_and_settle(qtbot, term, b"\x1b[?1h")
    sent.clear()
    qtbot.keyClick(term, Qt.Key.Key_Up)
    assert sent == [b"\x1bOA"]


def test_output_fed_before_the_widget_is_shown_keeps_its_grid(qtbot) -> None:
    widget = TerminalWidget(columns=100, rows=30)
    qtbot.addWidget(widget)
    widget.feed(b"x" * 90 + b"\r\n")
    qtbot.waitUntil(lambda: widget.pending_bytes() == 0)
    assert widget.grid_size() == (100, 30)
    assert widget.screen_lines()[0] == "x" * 90  # not wrapped at a default width
    with qtbot.waitSignal(widget.resized) as grid:
        widget.resize(widget.sizeHint())
        widget.show()
    assert tuple(grid.args) == widget.grid_size() == (80, 24)


def test_key_table() -> None:
    assert key_to_bytes(Qt.Key.Key_F1, Mod.NoModifier, "") == b"\x1bOP"
    assert key_to_bytes(Qt.Key.Key_F5, Mod.NoModifier, "") == b"\x1b[15~"
    assert key_to_bytes(Qt.Key.Key_PageDown, Mod.NoModifier, "") == b"\x1b[6~"
    assert key_to_bytes(Qt.Key.Key_Home, Mod.NoModifier, "", app_cursor=True) == b"\x1bOH"
    assert key_to_bytes(Qt.Key.Key_Backtab, Mod.ShiftModifier, "") == b"\x1b[Z"
    assert key_to_bytes(Qt.Key.Key_BracketLeft, Mod.ControlModifier, "") == b"\x1b"
    assert key_to_bytes(Qt.Key.Key_X, Mod.AltModifier, "x") == b"\x1bx"
    assert key_to_bytes(Qt.Key.Key_Eacute, Mod.NoModifier, "\u00e9") == "\u00e9".encode()
    assert key_to_bytes(Qt.Key.Key_Shift, Mod.ShiftModifier, "") is None


def test_resizing_changes_the_grid_and_signals_it(qtbot, term: TerminalWidget) -> None:
    _feed_and_settle(qtbot, term, b"".join(b"line %d\r\n" % i for i in range(30)))
    assert term.grid_size() == (80, 24)
    with qtbot.waitSignal(term.resized) as grid:
        # From the 80 columns the size hint gives (ceil(80 cells) wide) to 100: with a
        # font whose cells are a fraction of a pixel wide, 20 cells' pixels are not enough.
        wider = math.ceil(100 * term._cell_w) - math.ceil(80 * term._cell_w)
        term.resize(term.width() + wider, term.height() - 10 * term._cell_h)
    columns, rows = grid.args
    assert (columns, rows) == term.grid_size() == (100, 14)
    # Rows above the cursor that no longer fit went to the scrollback, not away.
    assert term.screen_lines()[-2] == "line 29"
    assert term.scrollback_size() == 30 + 1 - 14
    assert term.visible_lines()[0] == "line 17"


def test_mouse_selection_copies_and_paste_sends_clipboard(qtbot, term: TerminalWidget) -> None:
    _feed_and_settle(qtbot, term, b"first line here\r\nsecond line\r\n$ ")
    w, h = term._cell_w, term._cell_h
    viewport = term.viewport()
    start = QPoint(int(6 * w + 1), h // 2)  # "line here" on row 0
    end = QPoint(int(5 * w + 1), h + h // 2)  # …through "second" on row 1
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(viewport, end)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=end)
    assert term.selected_text() == "line here\nsecond"
    clipboard = QGuiApplication.clipboard()
    clipboard.clear()
    qtbot.keyClick(term, Qt.Key.Key_C, Mod.ControlModifier | Mod.ShiftModifier)
    assert clipboard.text() == "line here\nsecond"

    sent: list[bytes] = []
    term.send_bytes.connect(sent.append)
    clipboard.setText("echo hi\nls -l")
    qtbot.keyClick(term, Qt.Key.Key_V, Mod.ControlModifier | Mod.ShiftModifier)
    assert sent == [b"echo hi\rls -l"]
    # Bracketed paste (set by modern shells) wraps the pasted text.
    _feed_and_settle(qtbot, term, b"\x1b[?2004h")
    sent.clear()
    qtbot.keyClick(term, Qt.Key.Key_V, Mod.ControlModifier | Mod.ShiftModifier)
    assert sent == [b"\x1b[200~echo hi\rls -l\x1b[201~"]


def test_scrollback_keeps_at_least_2000_lines_and_view_can_scroll_back(
    qtbot, term: TerminalWidget
) -> None:
    _feed_and_settle(qtbot, term, b"".join(b"row %04d\r\n" % i for i in range(3000)))
    assert term.scrollback_size() >= 2000
    bar = term.verticalScrollBar()
    assert bar.value() == bar.maximum()  # following the output
    bar.setValue(0)
    assert term.visible_lines()[0] == "row 0000"
    # While the operator reads history, new output does not yank the view.
    _feed_and_settle(qtbot, term, b"more\r\n")
    assert term.visible_lines()[0] == "row 0000"
    # Typing returns to the live screen.
    qtbot.keyClick(term, Qt.Key.Key_A)
    assert bar.value() == bar.maximum()
    assert term.visible_lines()[-2] == "more"


def test_scrollback_is_bounded_and_clearable() -> None:
    screen = ScrollbackScreen(20, 5, scrollback_lines=2000)
    stream = pyte.ByteStream(screen)
    stream.feed(b"".join(b"n%d\r\n" % i for i in range(3000)))
    assert len(screen.scrollback) == 2000
    assert line_text(screen.scrollback[0]) == "n996"  # 3000 + 1 - 5 - 2000
    assert screen.pushed == 2996
    stream.feed(b"\x1b[3J")  # what `clear` sends to drop the scrollback
    assert len(screen.scrollback) == 0


def test_scrolling_region_does_not_pollute_scrollback() -> None:
    """Full-screen programs (less, vim) scroll inside margins: not history."""
    screen = ScrollbackScreen(20, 10)
    stream = pyte.ByteStream(screen)
    stream.feed(b"\x1b[2;9r\x1b[9;1H" + b"x\r\n" * 30)
    assert len(screen.scrollback) == 0


def test_cursor_is_drawn_and_hidden_on_request(qtbot, term: TerminalWidget) -> None:
    _feed_and_settle(qtbot, term, b"$ ")
    fg = term.palette().color(QPalette.ColorRole.Text)
    assert _has_colour(_cell_image(term, 0, 2), fg, tolerance=10)
    _feed_and_settle(qtbot, term, b"\x1b[?25l")
    assert not _has_colour(_cell_image(term, 0, 2), fg, tolerance=10)


def test_terminal_queries_are_answered(qtbot, term: TerminalWidget) -> None:
    sent: list[bytes] = []
    term.send_bytes.connect(sent.append)
    _feed_and_settle(qtbot, term, b"abc\x1b[6n")
    assert sent == [b"\x1b[1;4R"]


def test_a_megabyte_burst_neither_freezes_the_loop_nor_floods_repaints(
    qtbot, term: TerminalWidget
) -> None:
    line = b"\x1b[01;34mdir_%05d\x1b[0m  \x1b[01;32mrun.sh\x1b[0m  plain_file_name.txt  ok\r\n"
    data = b"".join(line.replace(b"%05d", b"%05d" % i) for i in range(15_000))
    assert len(data) >= 1_000_000
    ticks: list[float] = []
    heartbeat = QTimer()
    heartbeat.setInterval(5)
    heartbeat.timeout.connect(lambda: ticks.append(time.perf_counter()))
    heartbeat.start()
    paints_before = term.paint_count
    started = time.perf_counter()
    term.feed(data)
    assert time.perf_counter() - started < 0.05  # feed() only queues
    qtbot.waitUntil(lambda: term.pending_bytes() == 0, timeout=30_000)
    elapsed = time.perf_counter() - started
    qtbot.wait(50)
    heartbeat.stop()
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    paints = term.paint_count - paints_before
    # The loop kept turning: no gap anywhere near a freeze (a slice is 8 ms of
    # parsing; the margin absorbs a slow shared CI machine).
    assert max(gaps) < 0.25, max(gaps)
    # Repaints are coalesced to about one per 16 ms frame, never one per line.
    assert paints <= elapsed / 0.016 + 5, (paints, elapsed)
    assert term.screen_lines()[-2].startswith("dir_14999")
