"""The Locks pane: live locks with a ticking TTL, and an audited force release."""

from __future__ import annotations

import getpass
from typing import Any

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtWidgets import QApplication

from app.core.enums import HolderKind
from app.gui.bridge import EngineBridge
from app.gui.panes.locks import EMPTY_TEXT, LocksPane
from app.gui.panes.locks_model import LockCol, format_ttl
from app.gui.theme import apply_theme
from app.store import audit, locks
from tests.gui.conftest import run_async


@pytest.fixture
def bridge(gui_engine: Any) -> Any:
    bridge = EngineBridge(gui_engine)
    yield bridge
    bridge.close()


def make_pane(qtbot: Any, bridge: EngineBridge) -> LocksPane:
    pane = LocksPane(bridge)
    qtbot.addWidget(pane)
    pane.resize(1000, 300)
    pane.show()
    qtbot.waitExposed(pane)
    pane.engine_started()
    return pane


def select_name(pane: LocksPane, name: str) -> None:
    for row in range(pane.proxy.rowCount()):
        index = pane.proxy.index(row, LockCol.NAME)
        if index.data() == name:
            pane.view.selectionModel().select(
                index, QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows)
            return
    raise AssertionError(f"{name} not shown")


def test_ttl_text() -> None:
    assert [format_ttl(s) for s in (0, 42.9, 245, 3723, 3 * 86400 + 4 * 3600)] == [
        "expired", "42s", "4:05", "1:02:03", "3d 04h"]


def test_a_held_phone_shows_up_with_a_ticking_ttl(qtbot, bridge, gui_engine, gui_lab):
    pane = make_pane(qtbot, bridge)
    qtbot.waitUntil(lambda: pane._loader.runs >= 1 and not pane._loader.busy(), timeout=5000)
    assert pane.stack.currentIndex() == 1 and pane.empty_label.text() == EMPTY_TEXT
    serial = gui_lab.serials[0]
    run_async(qtbot, gui_engine.hold_device(serial, "alice", note="checking the camera",
                                            ttl_s=600))
    qtbot.waitUntil(lambda: pane.model.rowCount() == 1, timeout=5000)
    assert pane.stack.currentIndex() == 0
    index = pane.model.index(0, LockCol.NAME)
    assert index.data() == f"device:{serial}"
    assert pane.model.index(0, LockCol.HOLDER).data() == HolderKind.OPERATOR.value
    assert pane.model.index(0, LockCol.OWNER).data() == "operator:alice"
    assert pane.model.index(0, LockCol.NOTE).data() == "checking the camera"
    first = pane.model.index(0, LockCol.EXPIRES).data()
    assert first.startswith(("10:00", "9:5"))
    qtbot.waitUntil(lambda: pane.model.index(0, LockCol.EXPIRES).data() != first,
                    timeout=2500)  # counts down locally, every second


def test_force_release_frees_the_lock_and_is_audited(qtbot, bridge, gui_engine, gui_lab,
                                                     grab_dir):
    serial = gui_lab.serials[3]
    run_async(qtbot, gui_engine.hold_device(serial, "bob", note="flashing firmware"))
    # A task's lock written by another process: no event, seen on refresh.
    run_async(qtbot, gui_engine.store.call(locks.acquire, "capture:serial=XYZ", "worker-7",
                                           ttl_s=45))
    pane = make_pane(qtbot, bridge)
    qtbot.waitUntil(lambda: pane.model.rowCount() == 2, timeout=5000)
    app = QApplication.instance()
    for mode in ("light", "dark"):
        apply_theme(app, mode)
        qtbot.wait(20)
        assert pane.grab().save(str(grab_dir / f"locks-pane-{mode}.png"))
    apply_theme(app, "light")

    name = f"device:{serial}"
    select_name(pane, name)
    assert pane.release_action.isEnabled()
    # Cancelling the confirmation keeps the lock.
    dialog = pane.force_release_selected()
    assert dialog is not None and "operator:bob" in dialog.message.text()
    dialog.reject()
    assert pane.confirm_dialog is None
    assert run_async(qtbot, gui_engine.store.call(locks.get_lock, name)) is not None

    pane.activateWindow()
    pane.view.setFocus()
    qtbot.waitUntil(pane.isActiveWindow, timeout=2000)
    qtbot.keyClick(pane.view, Qt.Key.Key_Delete)
    dialog = pane.confirm_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.keyClicks(dialog.reason, "phone stuck in bootloader")
    qtbot.mouseClick(dialog.confirm, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: pane.model.row_of(name) is None, timeout=5000)
    assert run_async(qtbot, gui_engine.store.call(locks.get_lock, name)) is None
    entry = run_async(qtbot, gui_engine.store.call(audit.list_audit, 10, "lock.force_release"))[0]
    assert entry.subject == name and entry.actor == getpass.getuser()
    assert entry.detail["owner"] == "operator:bob"
    assert entry.detail["reason"] == "phone stuck in bootloader"
    # The phone is back in the pool.
    qtbot.waitUntil(lambda: next(v for v in gui_engine.device_views()
                                 if v.serial == serial).dispatch == "idle", timeout=5000)
    assert pane.model.row_of("capture:serial=XYZ") is not None
