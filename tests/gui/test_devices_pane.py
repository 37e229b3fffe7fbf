"""The Devices pane over a real engine and the simulated lab.

Protects: tiles mirror the engine (task progress, last result, unplug within a
second), hold keeps queued work off a phone, dropped APKs install on every
targeted phone, the table mirrors the wall, and the edit dialog validates inline.
"""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from app.core.enums import TaskState
from app.core.targets import Target
from app.core.taskspec import TaskSpec
from app.gui.bridge import EngineBridge
from app.gui.panes.devices import DevicesPane
from app.gui.panes.devices_table import DeviceTableModel
from app.gui.settings_store import load_gui_settings
from tests.gui.conftest import run_async


@pytest.fixture
def pane(qtbot: Any, gui_engine: Any, gui_lab: Any) -> Any:
    bridge = EngineBridge(gui_engine)
    widget = DevicesPane(bridge)
    qtbot.addWidget(widget)
    widget.resize(1100, 640)
    widget.show()
    widget.engine_started()
    qtbot.waitUntil(lambda: widget.tile_model.rowCount() == len(gui_lab.serials), timeout=5000)
    yield widget
    widget.shutting_down()
    bridge.close()


def tile(pane: DevicesPane, serial: str) -> Any:
    return pane.tile_model.tile(pane.tile_model.row_of(serial))


def make_apk(path: Path, package: str) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("taskdesk-package.txt", package)
        archive.writestr("classes.dex", b"dex\n035\x00" + bytes(64))
    path.write_bytes(buffer.getvalue())
    assert path.read_bytes().startswith(b"PK")
    return path


def test_tiles_follow_a_task_from_busy_with_progress_to_idle_with_its_result(
        qtbot, pane, gui_engine, gui_lab, grab_dir):
    assert all(tile(pane, s).state == "idle" for s in gui_lab.serials)
    assert pane.tile_model.counters()["idle"] == 6
    serial = gui_lab.serials[0]
    run_async(qtbot, gui_engine.submit(TaskSpec(
        kind="demo.capture", payload={"steps": 8, "step_ms": 200},
        target=Target.device(serial))))
    qtbot.waitUntil(lambda: tile(pane, serial).state == "busy"
                    and (tile(pane, serial).progress_percent or 0) > 0, timeout=10000)
    busy = tile(pane, serial)
    assert busy.task_kind == "demo.capture" and busy.task_started_at is not None
    assert busy.progress_step in ("launch", "capture")
    row = pane.table_model.view_of(serial)
    assert row is not None and row.dispatch == "busy"
    assert "demo.capture" in pane.table_model._text(row, DeviceTableModel.TASK)
    assert "Busy <b>1</b>" in pane.counters.text()
    pane.grab().save(str(grab_dir / "devices-pane-busy.png"))
    qtbot.waitUntil(lambda: tile(pane, serial).state == "idle", timeout=15000)
    done = tile(pane, serial)
    assert done.last_result == "success" and done.task_kind is None
    assert done.progress_percent is None


def test_an_unplugged_phone_shows_on_its_tile_within_a_second(qtbot, pane, gui_lab):
    serial = gui_lab.serials[1]
    try:
        gui_lab.unplug(serial)  # returns once adb no longer lists the phone
        unplugged = time.monotonic()
        qtbot.waitUntil(lambda: tile(pane, serial).state in ("absent", "offline"),
                        timeout=1000)
        qtbot.waitUntil(lambda: "Offline <b>1</b>" in pane.counters.text(), timeout=1000)
        assert time.monotonic() - unplugged < 1.0
        assert pane.table_model.view_of(serial).record.state.value in ("absent", "offline")
    finally:
        gui_lab.plug(serial)
    qtbot.waitUntil(lambda: tile(pane, serial).state == "idle", timeout=10000)


def test_hold_from_the_pane_makes_the_tile_held_and_keeps_work_off_the_phone(
        qtbot, pane, gui_engine, gui_lab):
    serial = gui_lab.serials[2]
    pane.select_serials([serial])
    hold = pane.device_actions.actions["hold"]
    assert hold.isEnabled() and not pane.device_actions.actions["release"].isEnabled()
    hold.trigger()
    qtbot.waitUntil(lambda: tile(pane, serial).state == "held", timeout=5000)
    assert pane.device_actions.actions["release"].isEnabled()
    view = pane.table_model.view_of(serial)
    assert view is not None and view.held_by == f"operator:{pane.device_actions.operator}"

    record = run_async(qtbot, gui_engine.submit(TaskSpec(
        kind="adb.shell", payload={"command": "echo held"}, target=Target.device(serial))))
    other = run_async(qtbot, gui_engine.submit(TaskSpec(
        kind="adb.shell", payload={"command": "echo free"},
        target=Target.device(gui_lab.serials[3]))))
    qtbot.waitUntil(lambda: run_async(qtbot, gui_engine.get_task(other.uid)).state
                    is TaskState.SUCCEEDED, timeout=10000)
    qtbot.wait(300)  # the dispatcher had every chance to hand the held phone its task
    assert run_async(qtbot, gui_engine.get_task(record.uid)).state is TaskState.PENDING
    assert tile(pane, serial).state == "held"

    pane.device_actions.actions["release"].trigger()
    qtbot.waitUntil(lambda: run_async(qtbot, gui_engine.get_task(record.uid)).state
                    is TaskState.SUCCEEDED, timeout=10000)
    qtbot.waitUntil(lambda: tile(pane, serial).state == "idle", timeout=5000)


def _drop(pane: DevicesPane, serial: str, paths: list[str]) -> None:
    wall = pane.wall
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(p) for p in paths])
    index = pane.tile_model.index(pane.tile_model.row_of(serial), 0)
    point = QPointF(wall.visualRect(index).center())
    action, buttons = Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton
    mods = Qt.KeyboardModifier.NoModifier
    viewport = wall.viewport()
    QApplication.sendEvent(viewport, QDragEnterEvent(point.toPoint(), action, mime, buttons,
                                                     mods))
    QApplication.sendEvent(viewport, QDragMoveEvent(point.toPoint(), action, mime, buttons,
                                                    mods))
    QApplication.sendEvent(viewport, QDropEvent(point, action, mime, buttons, mods))


def test_an_apk_dropped_on_two_selected_tiles_installs_on_both(
        qtbot, pane, gui_engine, gui_lab, tmp_path, grab_dir):
    package = "com.example.dropped"
    apk = make_apk(tmp_path / "dropped.apk", package)
    targets = gui_lab.serials[4:6]
    pane.select_serials(targets)
    _drop(pane, targets[1], [str(apk)])

    model = pane.installs.model
    qtbot.waitUntil(lambda: len(model.rows()) == 2, timeout=5000)
    assert pane.installs.isVisible()
    assert {r.serial for r in model.rows()} == set(targets)
    qtbot.waitUntil(lambda: all(r.state is TaskState.SUCCEEDED for r in model.rows()),
                    timeout=20000)
    assert all("Success" in r.detail for r in model.rows())
    assert model.data(model.index(0, model.STATUS)) == "Installed"
    pane.grab().save(str(grab_dir / "devices-pane-installs.png"))

    provider = gui_engine.provider
    for serial in targets:
        result = provider.shell(serial, "pm list packages", timeout=10.0)
        assert f"package:{package}" in result.output.split()
    records = [run_async(qtbot, gui_engine.get_task(r.uid)) for r in model.rows()]
    assert {r.priority.label for r in records} == {"high"}
    assert {str(r.target) for r in records} == {f"device:{s}" for s in targets}
    model.clear_finished()
    assert not model.rows() and not pane.installs.isVisible()


def test_a_file_that_is_not_an_apk_is_refused_before_anything_is_queued(
        qtbot, pane, gui_lab, tmp_path):
    errors: list[str] = []
    pane.bridge.error.connect(errors.append)
    fake = tmp_path / "fake.apk"
    fake.write_text("not a zip")
    assert pane.device_actions.install([gui_lab.serials[0]], [str(fake)]) is None
    assert errors == ["install: fake.apk is not an APK (not a zip archive)"]
    assert not pane.installs.model.rows()


def test_table_view_shows_the_same_phones_sorts_and_remembers_choices(qtbot, pane, gui_lab,
                                                                      gui_engine):
    serial = gui_lab.serials[0]
    pane.select_serials([serial])
    qtbot.keyClick(pane.wall, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    assert pane.view_mode() == "table"
    assert pane.selected_serials() == [serial]  # the selection carried over
    assert load_gui_settings(gui_engine.paths).device_view == "table"
    table = pane.table
    assert table.proxy.rowCount() == len(gui_lab.serials)
    states = {table.proxy.index(r, DeviceTableModel.STATE).data()
              for r in range(table.proxy.rowCount())}
    assert states == {"idle"}
    table.sortByColumn(DeviceTableModel.MODEL, Qt.SortOrder.DescendingOrder)
    models = [table.proxy.index(r, DeviceTableModel.MODEL).data()
              for r in range(table.proxy.rowCount())]
    assert models == sorted(models, key=str.lower, reverse=True)

    menu = table.column_menu()
    chooser = {a.text(): a for a in menu.actions()}
    assert not chooser["Serial"].isEnabled()  # the row's name cannot be hidden
    chooser["Tags"].toggle()
    assert table.isColumnHidden(DeviceTableModel.TAGS)
    again = DevicesPane(pane.bridge)  # a new pane restores the view and the columns
    qtbot.addWidget(again)
    assert again.view_mode() == "table"
    assert again.table.isColumnHidden(DeviceTableModel.TAGS)
    qtbot.keyClick(table, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    assert pane.view_mode() == "tiles" and pane.selected_serials() == [serial]


def test_the_table_re_sorts_only_while_it_is_on_screen(qtbot):
    from dataclasses import replace

    from app.core.enums import DeviceState
    from app.core.records import DeviceRecord
    from app.engine.bus import DeviceView
    from app.gui.panes.devices_table import DeviceTableView

    model = DeviceTableModel()
    table = DeviceTableView(model)
    qtbot.addWidget(table)
    views = [DeviceView(record=DeviceRecord(serial=serial, state=DeviceState.ONLINE,
                                            model=name), dispatch="idle")
             for serial, name in (("A", "Pixel 7"), ("B", "Galaxy"), ("C", "Moto"))]
    model.set_views(views)
    table.sortByColumn(DeviceTableModel.MODEL, Qt.SortOrder.AscendingOrder)

    def order() -> list[str]:
        return [table.proxy.index(row, 0).data() for row in range(table.proxy.rowCount())]

    assert order() == ["B", "C", "A"]
    signals: list[int] = []
    model.dataChanged.connect(lambda *_: signals.append(1))
    # Hidden (the wall is on show): changes are applied, not signalled, not sorted in.
    model.update_views([replace(views[0], record=replace(views[0].record, model="Asus"))])
    assert order() == ["B", "C", "A"] and not signals
    assert table.proxy.index(2, DeviceTableModel.MODEL).data() == "Asus"
    table.show()
    qtbot.waitExposed(table)
    assert order() == ["A", "B", "C"] and len(signals) == 1  # refreshed and sorted once
    model.update_views([replace(views[1], record=replace(views[1].record, model="Zte"))])
    assert order() == ["A", "C", "B"]  # and live while shown
    table.hide()
    assert not table.proxy.dynamicSortFilter()


def test_edit_dialog_checks_tags_inline_and_saves_to_the_engine(qtbot, pane, gui_engine,
                                                               gui_lab):
    serial = gui_lab.serials[3]
    pane.select_serials([serial])
    dialog = pane.device_actions.trigger("edit", [serial])  # deletes itself once closed
    save = dialog.buttons.button(dialog.buttons.StandardButton.Save)
    dialog.nickname.clear()
    qtbot.keyClicks(dialog.nickname, "Shelf 2 left")
    dialog.tags.clear()
    qtbot.keyClicks(dialog.tags, "camera, bad/tag!")
    assert "bad/tag!" in dialog.errors().get("tags", "") and not save.isEnabled()
    dialog.tags.clear()
    qtbot.keyClicks(dialog.tags, "camera lab-a")
    assert dialog.errors() == {} and save.isEnabled()
    with qtbot.waitSignal(dialog.accepted, timeout=5000):  # closes (and is deleted) on success
        qtbot.mouseClick(save, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tile(pane, serial).title == "Shelf 2 left", timeout=3000)
    assert tile(pane, serial).tags == ("camera", "lab-a")
    view = pane.table_model.view_of(serial)
    assert view is not None and view.record.tags == ("camera", "lab-a")

    # Several phones: only the shared tags are edited; others are kept.
    pane.select_serials(gui_lab.serials[2:4])
    multi = pane.device_actions.trigger("edit", gui_lab.serials[2:4])
    assert not multi.nickname.isEnabled() and multi.tags.text() == ""
    qtbot.keyClicks(multi.tags, "shared")
    run_async(qtbot, multi.save())
    qtbot.waitUntil(lambda: tile(pane, serial).tags == ("camera", "lab-a", "shared"),
                    timeout=3000)
    assert tile(pane, gui_lab.serials[2]).tags == ("shared",)


def test_screenshot_opens_a_viewer_that_saves_the_png(qtbot, pane, gui_lab, tmp_path,
                                                      grab_dir):
    serial = gui_lab.serials[0]
    task = pane.device_actions.take_screenshot(serial)
    qtbot.waitUntil(task.done, timeout=10000)
    viewer = task.result()
    assert viewer is pane.device_actions.viewers[serial] and viewer.isVisible()
    assert viewer.png().startswith(b"\x89PNG") and not viewer.pixmap().isNull()
    qtbot.wait(50)
    viewer.grab().save(str(grab_dir / "screenshot-viewer.png"))
    viewer.save_to(tmp_path / "shot")
    assert (tmp_path / "shot.png").read_bytes() == viewer.png()
    viewer.resize(320, 320)  # smaller than the screen: the image is fitted, not cropped
    qtbot.waitUntil(lambda: viewer.image.pixmap().height() < viewer.pixmap().height(),
                    timeout=2000)
    viewer.actual_size.setChecked(True)
    assert viewer.image.pixmap().size() == viewer.pixmap().size()
    dialog = viewer.open_save_dialog()
    assert dialog.isVisible()  # opened with open(): no nested event loop
    dialog.reject()
    viewer.close()


def test_reboot_asks_first_then_queues_a_high_priority_reboot(qtbot, pane, gui_engine,
                                                               gui_lab):
    serial = gui_lab.serials[5]
    box = pane.device_actions.trigger("reboot", [serial])
    assert isinstance(box, QMessageBox) and box.isVisible()
    box.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.wait(100)
    assert run_async(qtbot, gui_engine.store.call(_count_tasks, "adb.reboot")) == 0
    box = pane.device_actions.trigger("reboot", [serial])
    box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: run_async(qtbot, gui_engine.store.call(_count_tasks, "adb.reboot"))
                    == 1, timeout=5000)
    qtbot.waitUntil(lambda: tile(pane, serial).state in ("absent", "offline"), timeout=10000)
    qtbot.waitUntil(lambda: tile(pane, serial).state == "idle", timeout=15000)


def _count_tasks(kind: str) -> int:
    from app.store import tasks

    return len(tasks.list_tasks(kind=kind, limit=1000))


def test_counters_add_up_every_state_in_both_themes(qtbot, pane, gui_engine, gui_lab, themed,
                                                    grab_dir):
    held, serviced, gone = gui_lab.serials[0], gui_lab.serials[1], gui_lab.serials[2]
    pane.device_actions.set_held([held], True)
    pane.device_actions.set_maintenance([serviced], True)
    try:
        gui_lab.unplug(gone)
        qtbot.waitUntil(lambda: (tile(pane, held).state, tile(pane, serviced).state,
                                 tile(pane, gone).state) == ("held", "maintenance", "absent"),
                        timeout=5000)
        counts = pane.tile_model.counters()
        assert (counts["idle"], counts["held"], counts["maintenance"], counts["absent"]) == \
            (3, 1, 1, 1)
        parts = ("<b>6</b> devices", "Idle <b>3</b>", "Held <b>1</b>", "Maintenance <b>1</b>",
                 "Offline <b>1</b>")
        # Rendered at most four times a second: the last counts are always shown.
        qtbot.waitUntil(lambda: all(p in pane.counters.text() for p in parts), timeout=1000)
        pane.select_serials([serviced, gone])
        actions = pane.device_actions.actions
        assert actions["maintenance_off"].isEnabled() and not actions["release"].isEnabled()
        themed("dark")
        qtbot.wait(50)
        pane.grab().save(str(grab_dir / "devices-pane-dark.png"))
        pane.set_view_mode("table")
        qtbot.wait(50)
        pane.grab().save(str(grab_dir / "devices-table-dark.png"))
        assert pane.table.proxy.rowCount() == 6
    finally:
        gui_lab.plug(gone)
        pane.device_actions.set_maintenance([serviced], False)
        pane.device_actions.set_held([held], False)
    qtbot.waitUntil(lambda: pane.tile_model.counters()["idle"] == 6, timeout=10000)
