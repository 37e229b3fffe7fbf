"""What the devices pane can do to phones: one QAction per action, and the doing.

Interactive actions (shell, screenshot) talk to the phone directly through the
provider, even when it is held: they are the operator's own use of it. Their
blocking provider calls run in a small thread pool, never on the GUI thread.
Work that belongs in the history (install, reboot) is enqueued as tasks with
priority high and target ``device:<serial>``. Hold/release and maintenance go
through the engine, which records them in the audit log.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import getpass
import logging
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from app.core.enums import Priority
from app.core.records import TaskRecord
from app.core.targets import Target
from app.core.taskspec import TaskSpec
from app.engine.bus import DeviceView
from app.gui.bridge import EngineBridge
from app.gui.dialogs.device_edit import DeviceEditDialog
from app.gui.dialogs.screenshot_viewer import ScreenshotViewer
from app.gui.panes.devices_table import device_title, selection_states
from app.gui.tiles import ACTIONS

if TYPE_CHECKING:  # the terminal (pyte) loads when a shell is first opened: ~0.1 s off start-up
    from app.gui.dialogs.shell_window import ShellWindow

log = logging.getLogger(__name__)

SHORTCUTS: dict[str, str] = {
    "shell": "Ctrl+Shift+S", "screenshot": "Ctrl+Shift+P", "install_apk": "Ctrl+I",
    "reboot": "Ctrl+Shift+B", "hold": "Ctrl+H", "release": "Ctrl+Shift+H",
    "maintenance_on": "Ctrl+M", "maintenance_off": "Ctrl+Shift+M", "edit": "F2",
}
SHORT_LABELS: dict[str, str] = {  # toolbar texts (menus use the full labels)
    "shell": "Shell", "screenshot": "Screenshot", "install_apk": "Install APK\u2026",
    "reboot": "Reboot", "hold": "Hold", "release": "Release", "maintenance_on": "Maintenance on",
    "maintenance_off": "Maintenance off", "edit": "Edit\u2026",
}
TIPS: dict[str, str] = {
    "shell": "Open an interactive adb shell on each selected phone",
    "screenshot": "Capture the screen of each selected phone",
    "install_apk": "Install APK files on the selected phones (or drop .apk files on a tile)",
    "reboot": "Reboot the selected phones (queued as high-priority tasks)",
    "hold": "Hold the selected phones for yourself: no queued work runs on them",
    "release": "Release your hold: the phones take queued work again",
    "maintenance_on": "Take the selected phones out of the pool",
    "maintenance_off": "Put the selected phones back in the pool",
    "edit": "Edit nickname, tags and notes",
}
MAX_WINDOWS_AT_ONCE = 8  # shells/screenshots opened by one click
_CONNECTED = {"idle", "busy", "held", "maintenance"}


def enabled_actions(states: set[str]) -> dict[str, bool]:
    """Which actions can apply to phones in these displayed states (the wall's rules)."""
    connected = bool(states & _CONNECTED)
    return {
        "shell": connected, "screenshot": connected, "install_apk": connected,
        "reboot": connected,
        "hold": bool(states & (_CONNECTED - {"held"})),
        "release": "held" in states,
        "maintenance_on": bool(states - {"maintenance"}),
        "maintenance_off": "maintenance" in states,
        "edit": bool(states),
    }


def bring_to_front(window: QWidget) -> None:
    """Show a top-level window above the console (offscreen Qt cannot raise windows)."""
    window.show()
    if QGuiApplication.platformName() != "offscreen":
        window.raise_()
        window.activateWindow()


def install_specs(serials: list[str], apks: list[str], operator: str) -> list[TaskSpec]:
    """One high-priority ``adb.install`` task per phone and APK, pinned to the phone."""
    return [TaskSpec(kind="adb.install", payload={"apk": apk}, priority=Priority.HIGH,
                     target=Target.device(serial), source="gui", created_by=operator,
                     max_attempts=2)
            for serial in serials for apk in apks]


class DeviceActions(QObject):
    """The devices pane's actions, enabled for the current selection.

    Signals:
        installs_enqueued(list, dict): TaskRecords of new install tasks, and the
            serial -> title map to show them with.
    """

    installs_enqueued = Signal(list, dict)

    def __init__(self, bridge: EngineBridge, host: QWidget,
                 selection: Callable[[], list[str]],
                 lookup: Callable[[str], DeviceView | None]) -> None:
        super().__init__(host)
        self._bridge = bridge
        self._host = host
        self._selection = selection
        self._lookup = lookup
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=4,
                                                           thread_name_prefix="device-ui")
        self.operator = getpass.getuser()
        self.shells: dict[str, ShellWindow] = {}
        self.viewers: dict[str, ScreenshotViewer] = {}
        self.actions: dict[str, QAction] = {}
        app = QCoreApplication.instance()
        if app is not None:  # shells and viewers close with the console
            app.aboutToQuit.connect(self.shutdown)
        for action_id, label in ACTIONS:
            action = QAction(label, host)
            action.setObjectName(f"device_{action_id}")
            action.setIconText(SHORT_LABELS[action_id])
            action.setShortcut(QKeySequence(SHORTCUTS[action_id]))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.setToolTip(f"{TIPS[action_id]} ({SHORTCUTS[action_id]})")
            action.triggered.connect(
                lambda _c=False, a=action_id: self.trigger(a, self._selection()))
            host.addAction(action)
            self.actions[action_id] = action
        self.refresh()

    # -- public API -----------------------------------------------------------------------
    def refresh(self) -> None:
        """Enable the actions that can apply to the current selection."""
        enabled = enabled_actions(selection_states(self._lookup, self._selection()))
        for action_id, action in self.actions.items():
            action.setEnabled(enabled[action_id])

    def trigger(self, action_id: str, serials: list[str]) -> Any:
        """Run one action on these phones; returns what it opened or started."""
        if not serials:
            return None
        if action_id == "shell":
            return self.open_shells(serials)
        if action_id == "screenshot":
            return [self.take_screenshot(serial) for serial in serials[:MAX_WINDOWS_AT_ONCE]]
        if action_id == "install_apk":
            return self.choose_apks(serials)
        if action_id == "reboot":
            return self.confirm_reboot(serials)
        if action_id in ("hold", "release"):
            return self.set_held(serials, action_id == "hold")
        if action_id in ("maintenance_on", "maintenance_off"):
            return self.set_maintenance(serials, action_id == "maintenance_on")
        if action_id == "edit":
            return self.edit(serials)
        raise ValueError(f"unknown device action {action_id!r}")

    def open_shells(self, serials: list[str]) -> list[ShellWindow]:
        """A shell window per phone (an open one is raised instead of duplicated)."""
        provider = self._bridge.engine.provider
        if provider is None:
            self._bridge.error.emit("shell: no device provider is running")
            return []
        windows = []
        for serial in serials[:MAX_WINDOWS_AT_ONCE]:
            window = self.shells.get(serial)
            if window is None:
                from app.gui.dialogs.shell_window import ShellWindow

                window = ShellWindow(provider, serial, title=self._title(serial))
                window.window_closed.connect(self._on_shell_window_closed)
                self.shells[serial] = window
                window.connect_shell()
            bring_to_front(window)
            windows.append(window)
        return windows

    def take_screenshot(self, serial: str) -> asyncio.Task[Any]:
        """Capture the screen off the GUI thread, then show (or refresh) its viewer."""
        return self._bridge.run(self._screenshot(serial), what=f"screenshot of {serial}")

    def choose_apks(self, serials: list[str]) -> QFileDialog:
        """The non-modal file dialog for APKs; choosing files installs them."""
        dialog = QFileDialog(self._host, f"Install APK on {len(serials)} phone(s)",
                             str(Path.home()), "Android packages (*.apk)")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFiles)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.filesSelected.connect(lambda paths, s=list(serials): self.install(s, paths))
        dialog.open()
        return dialog

    def install(self, serials: list[str], apks: list[str]) -> asyncio.Task[Any] | None:
        """Enqueue installs of these APK files on these phones (drops come here too)."""
        good = []
        for apk in apks:
            path = Path(apk)
            if not path.is_file():
                self._bridge.error.emit(f"install: {path.name} is not a file")
            elif not zipfile.is_zipfile(path):
                self._bridge.error.emit(f"install: {path.name} is not an APK (not a zip archive)")
            else:
                good.append(str(path))
        if not good or not serials:
            return None
        specs = install_specs(serials, good, self.operator)
        titles = {serial: self._title(serial) for serial in serials}
        return self._bridge.run(self._submit_installs(specs, titles), what="install APK")

    def confirm_reboot(self, serials: list[str]) -> QMessageBox:
        """Ask first (a reboot interrupts whatever the phone is doing)."""
        names = ", ".join(self._title(s) for s in serials[:5])
        more = f" and {len(serials) - 5} more" if len(serials) > 5 else ""
        box = QMessageBox(QMessageBox.Icon.Question, "Reboot phones",
                          f"Reboot {names}{more}?\n\nThe reboot is queued as a high-priority "
                          "task; a phone finishes its current task first.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                          self._host)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.buttonClicked.connect(
            lambda button, b=box, s=list(serials): self._on_reboot_answer(b, button, s))
        box.open()  # never exec(): no nested event loop under qasync
        return box

    def reboot(self, serials: list[str]) -> asyncio.Task[Any]:
        specs = [TaskSpec(kind="adb.reboot", priority=Priority.HIGH, target=Target.device(s),
                          source="gui", created_by=self.operator, max_attempts=1)
                 for s in serials]
        return self._bridge.run(self._bridge.engine.submit_many(specs), what="reboot")

    def set_held(self, serials: list[str], hold: bool) -> asyncio.Task[Any]:
        engine, operator = self._bridge.engine, self.operator

        async def apply() -> None:
            for serial in serials:
                if hold:
                    await engine.hold_device(serial, operator, note="held from the console")
                else:
                    await engine.release_device(serial, operator)

        return self._bridge.run(apply(), what="hold" if hold else "release")

    def set_maintenance(self, serials: list[str], on: bool) -> asyncio.Task[Any]:
        engine, operator = self._bridge.engine, self.operator

        async def apply() -> None:
            for serial in serials:
                await engine.set_maintenance(serial, on, actor=operator)

        return self._bridge.run(apply(), what="maintenance " + ("on" if on else "off"))

    def edit(self, serials: list[str]) -> DeviceEditDialog | None:
        views = [v for v in (self._lookup(s) for s in serials) if v is not None]
        if not views:
            return None
        dialog = DeviceEditDialog(self._bridge, views, self._host)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def shutdown(self) -> None:
        """Close the windows this pane opened and stop its worker threads."""
        for window in list(self.shells.values()) + list(self.viewers.values()):
            window.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- slots and internals ------------------------------------------------------------------
    def _on_shell_window_closed(self, serial: str) -> None:
        self.shells.pop(serial, None)

    def _on_viewer_destroyed(self, serial: str) -> None:
        self.viewers.pop(serial, None)

    def _on_reboot_answer(self, box: QMessageBox, button: Any, serials: list[str]) -> None:
        if box.standardButton(button) == QMessageBox.StandardButton.Yes:
            self.reboot(serials)

    async def _screenshot(self, serial: str) -> ScreenshotViewer | None:
        provider = self._bridge.engine.provider
        if provider is None:
            raise RuntimeError("no device provider is running")
        loop = asyncio.get_running_loop()
        try:
            png = await loop.run_in_executor(self._pool, provider.screenshot, serial)
        except Exception:
            viewer = self.viewers.get(serial)
            if viewer is not None:
                viewer.show_message("Capture failed")
                viewer.retake_button.setEnabled(True)
            raise
        viewer = self.viewers.get(serial)
        if viewer is not None:
            viewer.set_png(png)
        else:
            viewer = ScreenshotViewer(png, serial=serial, title=self._title(serial))
            viewer.retake_requested.connect(self.take_screenshot)
            viewer.destroyed.connect(lambda _o=None, s=serial: self._on_viewer_destroyed(s))
            self.viewers[serial] = viewer
        bring_to_front(viewer)
        return viewer

    async def _submit_installs(self, specs: list[TaskSpec], titles: dict[str, str]
                               ) -> list[TaskRecord]:
        records = await self._bridge.engine.submit_many(specs)
        self.installs_enqueued.emit(records, titles)
        return records

    def _title(self, serial: str) -> str:
        view = self._lookup(serial)
        return device_title(view) if view is not None else serial
