"""Settings persist where they belong: the theme in gui.ini, engine settings in the
store (validated inline), secrets only in the keyring (or this session's memory)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from keyring.backends.fail import Keyring as FailKeyring
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.engine.secrets import SecretStore
from app.gui.bridge import EngineBridge
from app.gui.dialogs.settings import SettingsDialog
from app.gui.settings_store import load_gui_settings
from app.gui.theme import apply_theme, is_dark
from app.store import audit
from app.store.settings import all_settings, get_setting
from tests.gui.conftest import run_async

SECRET = "tok-9f8e7d6c5b4a-never-on-disk"


@pytest.fixture(autouse=True)
def secrets_executor(qt_loop: Any) -> Any:
    """SecretStore runs keyring calls with asyncio.to_thread. The shared qt_loop is
    never closed, so its default (QThread) executor would outlive the test; give it
    one we shut down."""
    executor = ThreadPoolExecutor(2, thread_name_prefix="secrets")
    qt_loop.set_default_executor(executor)
    yield executor
    executor.shutdown(wait=True)


@pytest.fixture
def bridge(gui_engine: Any) -> Any:
    bridge = EngineBridge(gui_engine)
    yield bridge
    bridge.close()


def make_dialog(qtbot: Any, bridge: EngineBridge, **kwargs: Any) -> SettingsDialog:
    dialog = SettingsDialog(bridge, bridge.engine.paths, **kwargs)
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.waitExposed(dialog)
    qtbot.waitUntil(lambda: dialog._loaded is not None, timeout=5000)
    return dialog


def files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_theme_applies_live_and_is_saved_to_gui_ini_on_ok(qtbot, bridge, gui_engine):
    app = QApplication.instance()
    apply_theme(app, "light")
    dialog = make_dialog(qtbot, bridge)
    assert dialog.data_dir.isReadOnly()
    assert dialog.data_dir.text() == str(gui_engine.paths.data_dir)
    dialog.theme_box.setCurrentText("dark")
    assert is_dark(app.palette())  # live preview
    assert load_gui_settings(gui_engine.paths).theme == "system"  # not saved yet
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=3000)
    assert load_gui_settings(gui_engine.paths).theme == "dark"
    assert (gui_engine.paths.data_dir / "gui.ini").read_text().count("theme=dark") == 1
    apply_theme(app, "light")


def test_cancel_restores_the_theme_and_saves_nothing(qtbot, bridge, gui_engine):
    app = QApplication.instance()
    apply_theme(app, "light")
    dialog = make_dialog(qtbot, bridge)
    dialog.theme_box.setCurrentText("dark")
    dialog.devices.editors["adb.port"].set_value(5999)
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert not is_dark(app.palette())
    assert load_gui_settings(gui_engine.paths).theme == "system"
    assert run_async(qtbot, gui_engine.store.call(get_setting, "adb.port")) == 5037


def test_store_settings_are_validated_inline_then_saved_and_audited(qtbot, bridge, gui_engine):
    dialog = make_dialog(qtbot, bridge)
    host = dialog.devices.editors["adb.host"]
    assert host.value() == "127.0.0.1"  # loaded from the store (the registry default)
    host.input.clear()
    qtbot.keyClicks(host.input, "lab host")
    dialog.tabs.setCurrentIndex(0)
    qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    assert dialog.tabs.currentIndex() == 1  # the page with the problem
    assert host.error.isVisibleTo(dialog) and "invalid host 'lab host'" in host.error.text()
    assert run_async(qtbot, gui_engine.store.call(all_settings)).get("adb.host") is None

    host.input.setText("10.0.0.5")
    dialog.devices.editors["demo.phones"].set_value(24)
    dialog.engine_form.editors["engine.lease_s"].set_value(45.0)
    dialog.engine_form.editors["history.retention_days"].set_value(90)
    lease_box = dialog.engine_form.editors["engine.lease_s"].input
    assert (lease_box.minimum(), lease_box.maximum()) == (5.0, 3600.0)  # registry limits
    with qtbot.waitSignal(dialog.applied, timeout=5000) as signal:
        qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    assert not host.error.isVisibleTo(dialog)
    assert signal.args[0] == {"adb.host": "10.0.0.5", "demo.phones": 24,
                              "engine.lease_s": 45.0, "history.retention_days": 90}
    stored = run_async(qtbot, gui_engine.store.call(all_settings))
    assert stored["adb.host"] == "10.0.0.5" and stored["history.retention_days"] == 90
    assert "adb.port" not in stored  # unchanged values are not written
    entry = run_async(qtbot, gui_engine.store.call(audit.list_audit, 5, "settings.update"))[0]
    assert entry.detail["values"]["demo.phones"] == 24
    assert dialog.isVisible()  # Apply keeps the dialog open


def test_a_secret_goes_to_the_keyring_and_never_to_the_data_directory(
        qtbot, bridge, gui_engine, memory_keyring):
    dialog = make_dialog(qtbot, bridge)
    page = dialog.credentials
    dialog.tabs.setCurrentWidget(page)
    assert set(page.rows) == {"api.token", "llm.api_key"}
    assert "stored in the system keyring" in page.where.text()
    row = page.rows["api.token"]
    qtbot.waitUntil(lambda: row.state.text() == "not set", timeout=3000)
    qtbot.keyClicks(row.edit, SECRET)
    assert row.edit.echoMode() == row.edit.EchoMode.Password
    qtbot.mouseClick(row.set_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: row.state.text() == "set", timeout=3000)
    assert row.edit.text() == ""
    assert memory_keyring.get_password("taskdesk", "api.token") == SECRET
    qtbot.waitUntil(lambda: bool(run_async(qtbot, gui_engine.store.call(
        audit.list_audit, 5, "secret.set"))), timeout=3000)
    # Let the store commit and checkpoint nothing special: read every file as it is.
    run_async(qtbot, gui_engine.store.call(all_settings))
    assert files_containing(gui_engine.paths.data_dir, SECRET.encode()) == []
    assert (gui_engine.paths.data_dir / "taskdesk.db").exists()

    qtbot.mouseClick(row.clear_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: row.state.text() == "not set", timeout=3000)
    assert memory_keyring.get_password("taskdesk", "api.token") is None


def test_without_a_secure_keyring_the_page_says_session_only(qtbot, bridge, gui_engine):
    secrets = SecretStore(backend=FailKeyring())
    dialog = make_dialog(qtbot, bridge, secrets=secrets)
    page = dialog.credentials
    dialog.tabs.setCurrentWidget(page)
    text = page.where.text()
    assert "for this session only" in text and "never written to disk" in text
    row = page.rows["llm.api_key"]
    row.edit.setText(SECRET)
    row.set_button.click()
    qtbot.waitUntil(lambda: row.state.text() == "set (this session only)", timeout=3000)
    assert secrets.get_sync("llm.api_key") == SECRET
    assert files_containing(gui_engine.paths.data_dir, SECRET.encode()) == []

    empty = page.rows["api.token"]
    empty.set_button.click()
    assert "Type a value first" in empty.error.text() and empty.error.isVisibleTo(dialog)


def test_grabs_of_every_page_in_both_themes(qtbot, bridge, grab_dir):
    app = QApplication.instance()
    dialog = make_dialog(qtbot, bridge, secrets=SecretStore(backend=FailKeyring()))
    dialog.devices.editors["adb.host"].show_error("adb server host: invalid host 'lab host'")
    for mode in ("light", "dark"):
        apply_theme(app, mode)
        for index in range(dialog.tabs.count()):
            dialog.tabs.setCurrentIndex(index)
            qtbot.wait(10)
            name = dialog.tabs.tabText(index).lower()
            assert dialog.grab().save(str(grab_dir / f"settings-{name}-{mode}.png"))
    apply_theme(app, "light")
    dialog.reject()
