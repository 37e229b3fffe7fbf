"""An interactive ``adb shell`` on one phone, in its own window.

The provider's :class:`InteractiveShell` is blocking, so nothing here touches it
on the GUI thread: the session is opened and written to by a one-thread
executor (writes stay in order), and a reader thread blocks in ``recv`` and
hands output to the GUI thread through a queued signal. Each connection has a
generation number, so output from a session the operator already replaced is
dropped. When the stream ends (phone unplugged, ``exit``) the window says so
and offers Reconnect; closing the window closes the session.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.devices.base import DeviceProvider, InteractiveShell
from app.gui.terminal import TerminalWidget

log = logging.getLogger(__name__)

CLOSED_BANNER = b"\r\n\x1b[7m[connection closed]\x1b[0m\r\n"


class ShellWindow(QWidget):
    """A terminal bridged to ``provider.open_shell(serial)``.

    Signals:
        state_changed(str): "connecting", "connected" or "closed".
        window_closed(str): the window closed; carries the serial.
    """

    state_changed = Signal(str)
    window_closed = Signal(str)
    # Private, emitted from worker threads; Qt queues them to the GUI thread.
    _opened = Signal(int, object)  # generation, shell or exception
    _received = Signal(int, bytes)
    _ended = Signal(int, str)

    def __init__(self, provider: DeviceProvider, serial: str, *, title: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.serial = serial
        self._provider = provider
        self._name = title or serial
        self._shell: InteractiveShell | None = None
        self._generation = 0
        self._state = "closed"
        # Workers emit under this lock and stop once the window is closing: emitting on
        # a QObject while the GUI thread destroys it crashed the process.
        self._emit_lock = threading.Lock()
        self._closing = False
        self._writer = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"shell-{serial}")
        self._setup_ui()
        self._opened.connect(self._on_self_opened, Qt.ConnectionType.QueuedConnection)
        self._received.connect(self._on_self_received, Qt.ConnectionType.QueuedConnection)
        self._ended.connect(self._on_self_ended, Qt.ConnectionType.QueuedConnection)

    # -- public API ---------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    def connect_shell(self) -> None:
        """Open a new session (dropping the current one, if any)."""
        self._drop_session()
        self._generation += 1
        generation = self._generation
        self._set_state("connecting", f"Connecting to {self._name}\u2026")
        self._submit(self._open, generation)

    def send_text(self, text: str) -> None:
        """Type ``text`` into the shell (tests and scripted use)."""
        self._on_terminal_send_bytes(text.encode())

    # -- set-up and slots -------------------------------------------------------------
    def _setup_ui(self) -> None:
        self.setWindowTitle(f"Shell \u2014 {self._name} ({self.serial})"
                            if self._name != self.serial else f"Shell \u2014 {self.serial}")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.terminal = TerminalWidget(self)
        self.terminal.send_bytes.connect(self._on_terminal_send_bytes)
        self.status = QLabel()
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reconnect_button = QPushButton("Reconnect")
        self.reconnect_button.setToolTip("Open a new shell on the phone (Ctrl+Shift+R)")
        self.reconnect_button.clicked.connect(self._on_reconnect_button_clicked)
        self.reconnect_button.hide()
        shortcut = QShortcut(QKeySequence("Ctrl+Shift+R"), self)
        shortcut.activated.connect(self._on_reconnect_button_clicked)
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 2, 6, 4)
        bar.addWidget(self.status, 1)
        bar.addWidget(self.reconnect_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.terminal, 1)
        layout.addLayout(bar)
        self.terminal.setFocus()

    def _on_self_opened(self, generation: int, outcome: object) -> None:
        if generation != self._generation:
            if not isinstance(outcome, BaseException):
                self._submit(_close_quietly, outcome)  # a session nobody wants any more
            return
        if isinstance(outcome, BaseException):
            self._set_state("closed", f"Could not open a shell: {outcome}")
            self.terminal.feed(f"\r\n[could not open a shell: {outcome}]\r\n".encode())
            return
        shell: InteractiveShell = outcome  # type: ignore[assignment]
        self._shell = shell
        threading.Thread(target=self._read_loop, args=(shell, generation),
                         name=f"shell-reader-{self.serial}", daemon=True).start()
        self._set_state("connected", f"Connected to {self._name} ({self.serial})")

    def _on_self_received(self, generation: int, data: bytes) -> None:
        if generation == self._generation:
            self.terminal.feed(data)

    def _on_self_ended(self, generation: int, reason: str) -> None:
        if generation != self._generation or self._state == "closed":
            return
        self._drop_session()
        self.terminal.feed(CLOSED_BANNER)
        self._set_state("closed", "Connection closed" + (f": {reason}" if reason else "")
                        + " \u2014 Reconnect opens a new shell")

    def _on_terminal_send_bytes(self, data: bytes) -> None:
        shell, generation = self._shell, self._generation
        if shell is None or self._state != "connected":
            return
        self._submit(self._send, shell, generation, data)

    def _on_reconnect_button_clicked(self) -> None:
        if self._state != "connecting":
            self.connect_shell()

    # -- worker threads ------------------------------------------------------------------
    def _open(self, generation: int) -> None:
        try:
            outcome: object = self._provider.open_shell(self.serial)
        except Exception as exc:
            outcome = exc
        stale = generation != self._generation
        if (stale or not self._emit(self._opened, generation, outcome)) and not isinstance(
                outcome, BaseException):
            _close_quietly(outcome)  # the window moved on (or closed) meanwhile

    def _read_loop(self, shell: InteractiveShell, generation: int) -> None:
        reason = ""
        try:
            while True:
                data = shell.recv()
                if not data:
                    break
                if not self._emit(self._received, generation, data):
                    break
        except Exception as exc:  # the stream broke: say why in the window
            reason = str(exc)
        self._emit(self._ended, generation, reason)

    def _send(self, shell: InteractiveShell, generation: int, data: bytes) -> None:
        try:
            shell.send(data)
        except Exception as exc:
            self._emit(self._ended, generation, str(exc))

    def _emit(self, signal: Any, *args: Any) -> bool:
        """Emit from a worker; False once the window is closing or gone."""
        with self._emit_lock:
            if self._closing:
                return False
            try:
                signal.emit(*args)
            except RuntimeError:  # the C++ object was deleted with the window
                return False
            return True

    # -- internals -------------------------------------------------------------------------
    def _set_state(self, state: str, message: str) -> None:
        self._state = state
        self.status.setText(message)
        self.reconnect_button.setVisible(state == "closed")
        self.state_changed.emit(state)

    def _drop_session(self) -> None:
        shell, self._shell = self._shell, None
        if shell is not None:
            self._submit(_close_quietly, shell)

    def _submit(self, fn: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the window closed: the pool is shut down
            self._writer.submit(fn, *args)

    # -- Qt overrides ------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        with self._emit_lock:  # waits for an emit in progress; none follows
            self._closing = True
        self._generation += 1  # late output and "ended" notices are ignored from here
        shell, self._shell = self._shell, None
        if shell is not None:
            _close_quietly(shell)  # quick: shuts the socket down; the reader then ends
        self._state = "closed"
        self._writer.shutdown(wait=False)
        self.window_closed.emit(self.serial)
        super().closeEvent(event)


def _close_quietly(shell: object) -> None:
    close = getattr(shell, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            close()
