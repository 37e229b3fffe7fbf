"""The Settings dialog: general, devices, engine and credentials pages.

Engine and device settings come from the settings registry and are stored in
the database through the engine's store thread (they apply at the next
start); the theme is a GUI preference in ``gui.ini`` and applies live;
secrets go only through :class:`SecretStore` (the OS keyring, or this session's
memory when no secure keyring exists) and never into the database.
"""

from __future__ import annotations

import getpass
from functools import partial
from typing import Any

import shiboken6
from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import ValidationError
from app.core.paths import Paths
from app.core.settings import REGISTRY
from app.engine.secrets import SecretStore
from app.gui.bridge import EngineBridge
from app.gui.dialogs.credentials import CredentialsPage
from app.gui.dialogs.payload_editor import ErrorLabel
from app.gui.dialogs.setting_editors import SettingsForm
from app.gui.panes.loader import StoreLoader
from app.gui.settings_store import THEMES, load_gui_settings, save_gui_settings
from app.gui.theme import apply_theme

DEVICE_KEYS = ("adb.host", "adb.port", "demo.phones")
ENGINE_KEYS = ("engine.max_tasks_per_job", "engine.lease_s", "engine.device_lost_grace_s",
               "history.retention_days", "history.timeout_minutes")
NEXT_START = "These settings apply at the next start of TaskDesk."


def _load_values() -> dict[str, Any]:
    from app.store.settings import get_setting

    return {key: get_setting(key) for key in (*DEVICE_KEYS, *ENGINE_KEYS)}


def _save_values(values: dict[str, Any], actor: str) -> dict[str, Any]:
    from app.store.audit import audit
    from app.store.settings import set_settings

    stored = set_settings(values)
    audit(actor, "settings.update", ",".join(sorted(stored))[:255], {"values": stored})
    return stored


class SettingsDialog(QDialog):
    """Settings with Apply / OK / Cancel and inline validation.

    Signals:
        applied(dict): the store settings just saved (key -> value).
    """

    applied = Signal(dict)

    def __init__(self, bridge: EngineBridge, paths: Paths, parent: QWidget | None = None, *,
                 secrets: SecretStore | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.engine = bridge.engine
        self.paths = paths
        self.secrets = secrets or SecretStore()
        self.gui_settings = load_gui_settings(paths)
        self._original_theme = self.gui_settings.theme
        self._loaded: dict[str, Any] | None = None
        self._close_after_apply = False
        self._saving = False
        self.setWindowTitle("Settings")
        self._setup_ui()
        self._values = StoreLoader(self.engine.store, _load_values, parent=self)
        self._values.loaded.connect(self._on_values_loaded)
        self._values.failed.connect(self._on_values_failed)
        self._values.request()

    # -- public API -------------------------------------------------------------------
    def apply(self) -> bool:
        """Validate every page and save what changed; False when something is refused."""
        self.error.setVisible(False)
        ok = True
        try:
            values = {**self.devices.checked_values(), **self.engine_form.checked_values()}
        except ValidationError:
            values, ok = {}, False
        theme = self.theme_box.currentText()
        if ok and theme != self.gui_settings.theme:
            # Re-read: the window may have saved other GUI preferences meanwhile.
            self.gui_settings = load_gui_settings(self.paths)
            self.gui_settings.theme = theme
            save_gui_settings(self.paths, self.gui_settings)
            self._original_theme = theme
        if not ok:
            self._show_page_with_error()
            return False
        if self._loaded is None:
            self._set_error("The stored settings are not loaded yet; nothing was saved.")
            return False
        changed = {k: v for k, v in values.items() if self._loaded.get(k) != v}
        if changed and not self._saving:
            self._saving = True
            self.apply_button.setEnabled(False)
            self._saver = StoreLoader(self.engine.store,
                                      partial(_save_values, changed, getpass.getuser()),
                                      parent=self)
            self._saver.loaded.connect(self._on_saved)
            self._saver.failed.connect(self._on_save_failed)
            self._saver.request()
        elif self._close_after_apply:
            self.accept()
        return True

    # -- building -----------------------------------------------------------------------
    def _setup_ui(self) -> None:
        layout = QVBoxLayout(self)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self._general_page(), "General")
        self.devices = SettingsForm(DEVICE_KEYS)
        self.tabs.addTab(self._with_note(self.devices, NEXT_START), "Devices")
        self.engine_form = SettingsForm(ENGINE_KEYS)
        self.tabs.addTab(self._with_note(self.engine_form, NEXT_START), "Engine")
        secret_keys = tuple(key for key, spec in REGISTRY.items() if spec.secret)
        self.credentials = CredentialsPage(self.bridge, self.secrets, secret_keys)
        self.tabs.addTab(self.credentials, "Credentials")
        layout.addWidget(self.tabs)
        self.error = ErrorLabel(self)
        layout.addWidget(self.error)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Apply
            | QDialogButtonBox.StandardButton.Cancel, self)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.apply_button = buttons.button(QDialogButtonBox.StandardButton.Apply)
        self.cancel_button = buttons.button(QDialogButtonBox.StandardButton.Cancel)
        self.apply_button.clicked.connect(self._on_apply_button_clicked)
        buttons.accepted.connect(self._on_buttons_accepted)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(560, 360)

    def _general_page(self) -> QWidget:
        page = QWidget(self)
        form = QFormLayout(page)
        row = QHBoxLayout()
        self.data_dir = QLineEdit(str(self.paths.data_dir), page)
        self.data_dir.setReadOnly(True)
        self.data_dir.setToolTip(f"{self.paths.data_dir}\nChosen at start with --data-dir or "
                                 "TASKDESK_DATA_DIR")
        open_button = QPushButton("Open folder", page)
        open_button.setToolTip("Show the data directory in the file manager")
        open_button.clicked.connect(self._on_open_button_clicked)
        row.addWidget(self.data_dir, 1)
        row.addWidget(open_button)
        form.addRow("Data directory", row)
        self.theme_box = QComboBox(page)
        self.theme_box.addItems(list(THEMES))
        self.theme_box.setCurrentText(self.gui_settings.theme)
        self.theme_box.setToolTip("system follows the desktop's light or dark scheme")
        self.theme_box.currentTextChanged.connect(self._on_theme_box_changed)
        form.addRow("Theme", self.theme_box)
        return page

    def _with_note(self, form: QWidget, note: str) -> QWidget:
        page = QWidget(self)
        layout = QVBoxLayout(page)
        layout.addWidget(form)
        label = QLabel(note, page)
        label.setWordWrap(True)
        label.setEnabled(False)  # caption colour
        layout.addWidget(label)
        layout.addStretch(1)
        return page

    # -- slots ------------------------------------------------------------------------
    def _on_values_loaded(self, values: dict[str, Any]) -> None:
        self._loaded = dict(values)
        self.devices.set_values(values)
        self.engine_form.set_values(values)

    def _on_values_failed(self, message: str) -> None:
        self._set_error(f"Could not read the stored settings: {message}")

    def _on_theme_box_changed(self, mode: str) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication) and mode in THEMES:
            apply_theme(app, mode)  # live preview; Cancel restores the saved theme

    def _on_open_button_clicked(self) -> None:
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.paths.data_dir))):
            self.bridge.error.emit(f"Could not open {self.paths.data_dir}")

    def _on_apply_button_clicked(self) -> None:
        self._close_after_apply = False
        self.apply()

    def _on_buttons_accepted(self) -> None:
        self._close_after_apply = True
        if not self.apply():
            self._close_after_apply = False

    def _on_saved(self, stored: dict[str, Any]) -> None:
        if not shiboken6.isValid(self):
            return
        self._saving = False
        self.apply_button.setEnabled(True)
        if self._loaded is not None:
            self._loaded.update(stored)
        self.applied.emit(stored)
        if self._close_after_apply:
            self.accept()

    def _on_save_failed(self, message: str) -> None:
        self._saving = False
        self.apply_button.setEnabled(True)
        self._set_error(f"Not saved: {message}")

    # -- overrides --------------------------------------------------------------------
    def reject(self) -> None:
        current = self.theme_box.currentText()
        app = QApplication.instance()
        if current != self._original_theme and isinstance(app, QApplication):
            apply_theme(app, self._original_theme)
        super().reject()

    # -- helpers ----------------------------------------------------------------------
    def _set_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(True)

    def _show_page_with_error(self) -> None:
        for index, form in ((1, self.devices), (2, self.engine_form)):
            if any(not e.error.isHidden() for e in form.editors.values()):
                self.tabs.setCurrentIndex(index)
                return
