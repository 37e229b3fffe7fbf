"""Bulk enqueue: a preview with a verdict per row; bad rows block "Enqueue all"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from app.cli.task_cmd import specs_from_file
from app.gui.bridge import EngineBridge
from app.gui.dialogs.bulk_enqueue import BulkEnqueueDialog
from app.gui.dialogs.bulk_model import BulkPreviewModel, read_rows
from app.store import tasks
from tests.gui.conftest import run_async

CSV_HEADER = "kind,payload,queue,priority,target,max_attempts,timeout_s,dedupe_key\n"


@pytest.fixture
def bridge(gui_engine: Any) -> Any:
    bridge = EngineBridge(gui_engine)
    yield bridge
    bridge.close()


def stored(qtbot: Any, engine: Any) -> list[Any]:
    return run_async(qtbot, engine.store.call(tasks.list_tasks, limit=1000))


def make_dialog(qtbot: Any, bridge: EngineBridge) -> BulkEnqueueDialog:
    dialog = BulkEnqueueDialog(bridge)
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.waitExposed(dialog)
    return dialog


def status(dialog: BulkEnqueueDialog, row: int) -> str:
    return dialog.model.index(row, BulkPreviewModel.STATUS).data()


def test_a_json_file_with_a_bad_row_enqueues_only_the_valid_rows_on_request(
        qtbot, bridge, gui_engine, tmp_path, grab_dir):
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([
        {"kind": "adb.shell", "payload": {"command": "echo one"}, "queue": "bulk"},
        {"kind": "adb.shell", "payload": {}, "queue": "bulk"},
        {"kind": "adb.reboot", "queue": "bulk", "priority": "high"},
    ]))
    run_async(qtbot, gui_engine.set_queue_paused("bulk", True, actor="test"))
    dialog = make_dialog(qtbot, bridge)
    dialog.load_file(path)
    assert dialog.model.rowCount() == 3
    assert [status(dialog, r) for r in (0, 2)] == ["ok", "ok"]
    assert "payload field 'command' is required" in status(dialog, 1)
    assert "task #2: payload field 'command' is required" in dialog.error.text()
    assert "2 valid, 1 with errors" in dialog.summary.text()
    assert not dialog.all_button.isEnabled()
    assert dialog.valid_button.isEnabled() and dialog.valid_button.text() == \
        "Enqueue the 2 valid rows"
    assert stored(qtbot, gui_engine) == []
    assert dialog.grab().save(str(grab_dir / "bulk-enqueue.png"))

    with qtbot.waitSignal(dialog.enqueued, timeout=5000) as signal:
        qtbot.mouseClick(dialog.valid_button, Qt.MouseButton.LeftButton)
    assert len(signal.args[0]) == 2
    assert dialog.summary.text() == "Enqueued 2 tasks into bulk."
    kinds = sorted(t.kind for t in stored(qtbot, gui_engine))
    assert kinds == ["adb.reboot", "adb.shell"]
    # Done: the same rows cannot be queued twice by a second click.
    assert not dialog.all_button.isEnabled() and not dialog.valid_button.isEnabled()


def test_a_csv_file_is_enqueued_only_once_every_row_is_valid(qtbot, bridge, gui_engine,
                                                             tmp_path):
    path = tmp_path / "tasks.csv"
    path.write_text(CSV_HEADER
                    + 'adb.shell,"{""command"": ""id""}",csvq,normal,any,2,30,\n'
                    + 'adb.shell,"{""command"": ",csvq,normal,any,,,\n'
                    + "adb.reboot,,csvq,low,tags:lab-a,,,reboot-lock\n")
    run_async(qtbot, gui_engine.set_queue_paused("csvq", True, actor="test"))
    dialog = make_dialog(qtbot, bridge)
    dialog.load_file(path)
    assert "payload is not valid JSON" in status(dialog, 1)
    assert dialog.model.index(1, BulkPreviewModel.NUMBER).data() == "2 (line 3)"
    assert "task #2 (line 3)" in dialog.error.text()
    assert not dialog.all_button.isEnabled()
    assert stored(qtbot, gui_engine) == []

    path.write_text(CSV_HEADER
                    + 'adb.shell,"{""command"": ""id""}",csvq,normal,any,2,30,\n'
                    + 'adb.shell,"{""command"": ""uptime""}",csvq,normal,any,,,\n'
                    + "adb.reboot,,csvq,low,tags:lab-a,,,reboot-lock\n")
    # Picked again through the (non-modal) file dialog.
    picker = dialog.choose_file()
    picker.selectFile(str(path))
    picker.accept()
    qtbot.waitUntil(lambda: dialog.all_button.isEnabled(), timeout=3000)
    assert dialog.all_button.text() == "Enqueue all 3" and not dialog.valid_button.isVisible()
    assert not dialog.error.isVisibleTo(dialog)
    with qtbot.waitSignal(dialog.enqueued, timeout=5000):
        qtbot.mouseClick(dialog.all_button, Qt.MouseButton.LeftButton)
    rows = stored(qtbot, gui_engine)
    assert len(rows) == 3
    first = next(t for t in rows if t.payload.get("command") == "id")
    assert (first.max_attempts, first.timeout_s, first.source) == (2, 30.0, "gui")
    reboot = next(t for t in rows if t.kind == "adb.reboot")
    assert reboot.dedupe_key == "reboot-lock" and str(reboot.target) == "tags:lab-a"


def test_a_file_that_is_not_a_task_list_is_refused_whole(qtbot, bridge, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("[{\"kind\": ")
    dialog = make_dialog(qtbot, bridge)
    assert dialog.load_file(path) == []
    assert "broken.json is not valid JSON" in dialog.error.text()
    assert dialog.model.rowCount() == 0
    assert not dialog.all_button.isEnabled() and not dialog.valid_button.isEnabled()


@pytest.mark.parametrize("name", ["good.json", "good.csv"])
def test_rows_are_read_exactly_as_the_cli_reads_them(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".csv"):
        path.write_text(CSV_HEADER
                        + 'adb.shell,"{""command"": ""id""}",q1,high,device:ABC,2,30.5,k1\n'
                        + "adb.reboot,,,,,,,\n")
    else:
        path.write_text(json.dumps([
            {"kind": "adb.shell", "payload": {"command": "id"}, "queue": "q1",
             "priority": "high", "target": "device:ABC", "max_attempts": 2,
             "timeout_s": 30.5, "dedupe_key": "k1", "not_before": "2030-01-01T00:00:00Z"},
            {"kind": "adb.reboot"},
        ]))
    ours = [row.spec for row in read_rows(path, created_by="op", source="gui")]
    assert ours == specs_from_file(path, created_by="op", source="gui")
