"""The shell window: a terminal on a simulated phone's interactive ``adb shell``.

Protects: typed commands reach the phone and its answer is shown; an unplugged
phone ends the session visibly and Reconnect opens a new one; closing the
window closes the session (its reader thread ends).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import Qt

from app.gui.dialogs.shell_window import ShellWindow


@pytest.fixture
def window(qtbot: Any, gui_engine: Any, gui_lab: Any) -> Any:
    serial = gui_lab.serials[0]
    widget = ShellWindow(gui_engine.provider, serial, title="Bench phone")  # deletes on close
    widget.resize(720, 420)
    widget.show()
    widget.connect_shell()
    qtbot.waitUntil(lambda: widget.state == "connected", timeout=5000)
    qtbot.waitUntil(lambda: any("$" in line for line in widget.terminal.screen_lines()),
                    timeout=5000)
    yield widget
    if shiboken6.isValid(widget):  # closed windows delete themselves
        widget.close()


def _type_line(qtbot: Any, window: ShellWindow, text: str) -> None:
    qtbot.keyClicks(window.terminal, text)
    qtbot.keyClick(window.terminal, Qt.Key.Key_Return)


def _shows_line(window: ShellWindow, text: str) -> bool:
    return any(line.strip() == text for line in window.terminal.screen_lines())


def test_getprop_typed_in_the_terminal_shows_the_phones_model(qtbot, window, gui_lab,
                                                               grab_dir):
    model = gui_lab.phone(window.serial).profile.model
    assert window.windowTitle() == f"Shell \u2014 Bench phone ({window.serial})"
    _type_line(qtbot, window, "getprop ro.product.model")
    qtbot.waitUntil(lambda: _shows_line(window, model), timeout=5000)
    # The phone echoed the command line before answering it.
    assert any("getprop ro.product.model" in line for line in window.terminal.screen_lines())
    _type_line(qtbot, window, "echo one; echo two | grep tw")
    qtbot.waitUntil(lambda: _shows_line(window, "two"), timeout=5000)
    assert _shows_line(window, "one")
    window.grab().save(str(grab_dir / "shell-window.png"))


def test_an_unplugged_phone_closes_the_session_and_reconnect_opens_a_new_one(
        qtbot, window, gui_lab):
    serial = window.serial
    try:
        gui_lab.unplug(serial)
        qtbot.waitUntil(lambda: window.state == "closed", timeout=5000)
        assert window.reconnect_button.isVisible()
        assert window.status.text().startswith("Connection closed")
        assert any("[connection closed]" in line for line in window.terminal.screen_lines())
        _type_line(qtbot, window, "echo lost")  # typing into a closed session is harmless
    finally:
        gui_lab.plug(serial)
    qtbot.mouseClick(window.reconnect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.state == "connected", timeout=10000)
    assert not window.reconnect_button.isVisible()
    _type_line(qtbot, window, "echo back-again")
    qtbot.waitUntil(lambda: _shows_line(window, "back-again"), timeout=5000)


def test_exit_ends_the_session_and_closing_the_window_closes_the_stream(qtbot, window):
    _type_line(qtbot, window, "exit")
    qtbot.waitUntil(lambda: window.state == "closed", timeout=5000)
    window.connect_shell()
    qtbot.waitUntil(lambda: window.state == "connected", timeout=5000)
    readers = [t for t in threading.enumerate() if t.name == f"shell-reader-{window.serial}"]
    assert len(readers) == 1
    with qtbot.waitSignal(window.window_closed):
        window.close()
    qtbot.waitUntil(lambda: not readers[0].is_alive(), timeout=3000)
