"""The main window: the device wall in the middle, queue/history/locks/alerts docked
around it, menus with shortcuts, a status bar, and saved geometry and layout."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QMainWindow,
    QMessageBox,
    QSystemTrayIcon,
    QWidget,
)

from app import __version__
from app.core.paths import Paths
from app.engine.engine import Engine
from app.gui.bridge import EngineBridge
from app.gui.panes.alerts import AlertsPane
from app.gui.selftest import run_self_test
from app.gui.settings_store import load_window_state, save_window_state
from app.gui.statusbar import StatusBar

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """Signals:
        close_requested(): the operator closed the window; the app shuts down in order.
    """

    close_requested = Signal()

    def __init__(self, engine: Engine, *, paths: Paths, demo: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.paths = paths
        self.bridge = EngineBridge(engine, self)
        self._dialogs: list[QWidget] = []
        self._tray: QSystemTrayIcon | None = None
        self.setObjectName("MainWindow")
        self.setWindowTitle("TaskDesk — simulated lab" if demo else "TaskDesk")
        self._setup_ui()
        self._restore_layout()

    # -- construction -------------------------------------------------------------------
    def _setup_ui(self) -> None:
        from app.gui.panes.devices import DevicesPane
        from app.gui.panes.history import HistoryPane
        from app.gui.panes.locks import LocksPane
        from app.gui.panes.queue import QueuePane
        from app.resources import resource

        try:
            self.setWindowIcon(QIcon(str(resource("icons", "taskdesk.svg"))))
        except FileNotFoundError as exc:
            log.warning("%s", exc)
        self.resize(1400, 900)
        self.devices = DevicesPane(self.bridge, self)
        self.setCentralWidget(self.devices)
        self.queue = QueuePane(self.bridge, self)
        self.history = HistoryPane(self.bridge, self)
        self.locks = LocksPane(self.bridge, self)
        self.alerts = AlertsPane(self.bridge, self)
        self.alerts.alert_added.connect(self._on_alerts_alert_added)
        bottom = Qt.DockWidgetArea.BottomDockWidgetArea
        right = Qt.DockWidgetArea.RightDockWidgetArea
        self.queue_dock = self._dock("Queue", self.queue, bottom)
        self.history_dock = self._dock("History", self.history, bottom)
        self.tabifyDockWidget(self.queue_dock, self.history_dock)
        self.queue_dock.raise_()
        self.locks_dock = self._dock("Locks", self.locks, right)
        self.alerts_dock = self._dock("Alerts", self.alerts, right)
        self.tabifyDockWidget(self.locks_dock, self.alerts_dock)
        self.locks_dock.raise_()
        # First-run sizes (a saved layout replaces them): room for lock names and
        # about ten queue rows under the device wall.
        self.resizeDocks([self.locks_dock], [460], Qt.Orientation.Horizontal)
        self.resizeDocks([self.queue_dock], [330], Qt.Orientation.Vertical)
        self.status = StatusBar(self.bridge, self)
        self.setStatusBar(self.status)
        self._setup_menus()

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{title.lower()}_dock")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _setup_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "&Settings…", self._on_settings_triggered,
                     QKeySequence.StandardKey.Preferences, "Ctrl+,")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        tasks_menu = bar.addMenu("&Tasks")
        # The queue pane's own actions, made window-wide: one action per shortcut, so
        # Ctrl+N is never ambiguous and works wherever the focus is.
        for action in (self.queue.new_action, self.queue.bulk_action):
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            tasks_menu.addAction(action)
        view_menu = bar.addMenu("&View")
        for dock, key in ((self.queue_dock, "Alt+1"), (self.history_dock, "Alt+2"),
                          (self.locks_dock, "Alt+3"), (self.alerts_dock, "Alt+4")):
            action = dock.toggleViewAction()
            action.setShortcut(QKeySequence(key))
            view_menu.addAction(action)
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About TaskDesk", self._on_about_triggered)

    def _action(self, menu: Any, text: str, slot: Any, standard: Any = None,
                fallback: str | None = None) -> QAction:
        action = QAction(text, self)
        if standard is not None and QKeySequence.keyBindings(standard):
            action.setShortcuts(standard)
        elif fallback:
            action.setShortcut(QKeySequence(fallback))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    # -- lifecycle (called by app.gui.app) ----------------------------------------------
    def engine_started(self) -> None:
        for pane in (self.devices, self.queue, self.history, self.locks, self.alerts):
            pane.engine_started()
        self.status.engine_started()
        if QSystemTrayIcon.isSystemTrayAvailable():
            self._tray = QSystemTrayIcon(self.windowIcon(), self)
            self._tray.setToolTip("TaskDesk")
            self._tray.show()

    def shutting_down(self) -> None:
        from app.gui.panes.loader import StoreLoader

        for loader in self.findChildren(StoreLoader):
            loader.close()
        self.status.stop()
        self.devices.shutting_down()
        self.bridge.close()

    def bring_to_front(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    async def self_test(self) -> int:
        """The ``--self-test`` run: a few demo tasks through the real engine."""
        summary = await run_self_test(self.bridge.engine)
        sys.stdout.write(json.dumps(summary) + "\n")
        sys.stdout.flush()
        return 0 if summary["ok"] else 1

    # -- slots ----------------------------------------------------------------------------
    def _on_settings_triggered(self) -> None:
        from app.gui.dialogs.settings import SettingsDialog

        dialog = SettingsDialog(self.bridge, self.paths, self)
        self._keep(dialog)
        dialog.open()

    def _on_about_triggered(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "About TaskDesk",
                          f"TaskDesk {__version__}\nOperator console for Android phone labs."
                          f"\n\nData: {self.paths.data_dir}", parent=self)
        self._keep(box)
        box.open()

    def _on_alerts_alert_added(self, severity: str, message: str) -> None:
        if self._tray is not None and severity in ("warning", "error"):
            icon = (QSystemTrayIcon.MessageIcon.Critical if severity == "error"
                    else QSystemTrayIcon.MessageIcon.Warning)
            self._tray.showMessage("TaskDesk", message, icon, 8000)

    def _keep(self, dialog: QWidget) -> None:
        """Hold a reference to an open dialog until it closes."""
        self._dialogs.append(dialog)
        finished = getattr(dialog, "finished", None)
        if finished is not None:
            finished.connect(lambda *_: self._dialogs.remove(dialog)
                             if dialog in self._dialogs else None)

    # -- layout ---------------------------------------------------------------------------
    def _restore_layout(self) -> None:
        geometry, state = load_window_state(self.paths)
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)

    def closeEvent(self, event: QCloseEvent) -> None:
        # The qasync loop must not be stopped under the engine: the composition root
        # hears this signal, shuts the engine down, and only then returns.
        save_window_state(self.paths, self.saveGeometry(), self.saveState())
        super().closeEvent(event)
        self.close_requested.emit()
