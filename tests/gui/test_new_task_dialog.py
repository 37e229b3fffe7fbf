"""The New task dialog refuses bad input inline and enqueues good input that runs."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt

from app.core.enums import Priority, TaskState
from app.core.targets import Target
from app.core.taskspec import TaskSpec
from app.gui.bridge import EngineBridge
from app.gui.dialogs.new_task import NewTaskDialog
from app.store import tasks
from tests.gui.conftest import run_async


@pytest.fixture
def bridge(gui_engine: Any) -> Any:
    bridge = EngineBridge(gui_engine)
    yield bridge
    bridge.close()


def stored_tasks(qtbot: Any, engine: Any) -> int:
    counts = run_async(qtbot, engine.store.call(tasks.count_by_state))
    return sum(counts.values())


def open_dialog(qtbot: Any, bridge: EngineBridge, **kwargs: Any) -> NewTaskDialog:
    dialog = NewTaskDialog(bridge, **kwargs)
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.waitExposed(dialog)
    return dialog


def choose_kind(dialog: NewTaskDialog, kind: str) -> None:
    index = dialog.kind_box.findData(kind)
    assert index >= 0, kind
    dialog.kind_box.setCurrentIndex(index)


def press_enqueue(qtbot: Any, dialog: NewTaskDialog) -> None:
    qtbot.mouseClick(dialog.submit_button, Qt.MouseButton.LeftButton)


def test_bad_input_is_refused_inline_and_nothing_is_enqueued(qtbot, bridge, gui_engine):
    dialog = open_dialog(qtbot, bridge)
    choose_kind(dialog, "adb.shell")
    editor = dialog.payload_editor
    assert editor is not None

    # An empty required field: the message sits under that field.
    press_enqueue(qtbot, dialog)
    command = editor.fields["command"]
    assert command.error.isVisibleTo(dialog)
    assert "'command' must not be empty" in command.error.text()
    assert dialog.isVisible()

    # A bad target: a tag with a space cannot form a selector.
    qtbot.keyClicks(command.input, "getprop ro.product.model")
    target = dialog.target_editor
    target.kind_box.setCurrentIndex(target.kind_box.findData("selector"))
    qtbot.keyClicks(target.tags, "bad tag!")
    press_enqueue(qtbot, dialog)
    assert not command.error.isVisibleTo(dialog)
    assert "invalid tag" in dialog.errors["target"].text()
    assert dialog.errors["target"].isVisibleTo(dialog)

    # A bad queue name.
    target.kind_box.setCurrentIndex(target.kind_box.findData("any"))
    dialog.queue_box.setCurrentText("no spaces allowed")
    press_enqueue(qtbot, dialog)
    assert "invalid queue name" in dialog.errors["queue"].text()
    dialog.queue_box.setCurrentText("default")

    # Wrong type and unknown field, typed as raw JSON.
    dialog.raw_toggle.setChecked(True)
    assert '"command": "getprop ro.product.model"' in editor.raw.toPlainText()
    editor.raw.setPlainText('{"command": 5}')
    press_enqueue(qtbot, dialog)
    assert "'command' must be a string" in editor.error.text()
    editor.raw.setPlainText('{"command": "ls", "bogus": 1}')
    press_enqueue(qtbot, dialog)
    assert "unknown payload field(s): bogus" in editor.error.text()
    editor.raw.setPlainText('{"command": "ls",')
    press_enqueue(qtbot, dialog)
    assert "not valid JSON" in editor.error.text()
    # Switching back to the form with broken JSON is refused, not lost.
    dialog.raw_toggle.setChecked(False)
    assert dialog.raw_toggle.isChecked() and editor.raw_mode

    # Bad JSON in a JSON field of the form: shown under that field.
    dialog.raw_toggle.blockSignals(True)
    dialog.raw_toggle.setChecked(False)
    dialog.raw_toggle.blockSignals(False)
    choose_kind(dialog, "local.execute")
    execute = dialog.payload_editor
    assert execute is not None and not execute.raw_mode
    execute.fields["argv"].input.setPlainText("true")
    execute.fields["env"].input.setPlainText("{bad")
    press_enqueue(qtbot, dialog)
    assert "'env' is not valid JSON" in execute.fields["env"].error.text()
    assert execute.fields["env"].error.isVisibleTo(dialog)

    assert dialog.isVisible()
    assert stored_tasks(qtbot, gui_engine) == 0


def test_a_target_or_kind_the_engine_refuses_is_shown_at_that_field(qtbot, bridge, gui_engine):
    host_shell = TaskSpec(kind="adb.shell", payload={"command": "ls"}, target=Target.host())
    dialog = open_dialog(qtbot, bridge, initial=host_shell)
    press_enqueue(qtbot, dialog)
    assert "cannot run on a host target" in dialog.errors["target"].text()

    unknown = open_dialog(qtbot, bridge, initial=TaskSpec(kind="nope.missing"))
    assert "not installed" in unknown.kind_box.currentText()
    press_enqueue(qtbot, unknown)
    assert "unknown task kind 'nope.missing'" in unknown.errors["kind"].text()
    assert stored_tasks(qtbot, gui_engine) == 0


def test_good_input_is_enqueued_and_runs_on_the_chosen_phone(qtbot, bridge, gui_engine,
                                                             gui_lab):
    dialog = open_dialog(qtbot, bridge)
    choose_kind(dialog, "adb.shell")
    editor = dialog.payload_editor
    assert editor is not None
    qtbot.keyClicks(editor.fields["command"].input, "getprop ro.product.model")
    serial = gui_lab.serials[2]
    target = dialog.target_editor
    target.kind_box.setCurrentIndex(target.kind_box.findData("device"))
    target.device_box.setCurrentIndex(target.device_box.findData(serial))
    assert serial in target.device_box.currentText()
    dialog.priority_box.setCurrentIndex(dialog.priority_box.findData(int(Priority.HIGH)))

    with qtbot.waitSignal(dialog.submitted, timeout=10000) as signal:
        press_enqueue(qtbot, dialog)
    record = signal.args[0]
    assert record.kind == "adb.shell" and record.target == Target.device(serial)
    assert record.priority is Priority.HIGH and record.source == "gui"
    assert not dialog.isVisible()

    def finished() -> bool:
        return run_async(qtbot, gui_engine.get_task(record.uid)).state.is_terminal

    qtbot.waitUntil(finished, timeout=15000)
    done = run_async(qtbot, gui_engine.get_task(record.uid))
    assert done.state is TaskState.SUCCEEDED, done.last_error
    assert done.device_serial == serial
    assert done.result["exit_code"] == 0 and done.result["output"].strip()


def test_clone_prefills_every_field(qtbot, bridge):
    original = TaskSpec(
        kind="adb.shell",
        payload={"command": "echo hi", "timeout_s": 12.5, "check": False, "output_limit": 4096},
        queue="night", priority=Priority.CRITICAL, target=Target.selector(["lab-a", "cam"],
                                                                          "Pixel 7"),
        not_before=1_900_000_000.0, max_attempts=5, timeout_s=42.5,
        dedupe_key="capture:serial=ABC", source="gui",
    )
    dialog = open_dialog(qtbot, bridge, initial=original)
    assert dialog.windowTitle() == "Clone task"
    spec = dialog.spec()
    assert spec.kind == original.kind and spec.payload == original.payload
    assert (spec.queue, spec.priority, spec.target) == ("night", Priority.CRITICAL,
                                                         original.target)
    assert (spec.max_attempts, spec.timeout_s, spec.dedupe_key, spec.not_before) == (
        5, 42.5, "capture:serial=ABC", 1_900_000_000.0)

    # A phone that is not connected stays visible rather than silently replaced.
    gone = open_dialog(qtbot, bridge, initial=TaskSpec(kind="adb.reboot",
                                                       target=Target.device("GONE123")))
    assert "GONE123" in gone.target_editor.device_box.currentText()
    assert gone.spec().target == Target.device("GONE123")


def test_optional_number_left_unset_is_left_out_of_the_payload(qtbot, bridge):
    dialog = open_dialog(qtbot, bridge)
    choose_kind(dialog, "adb.shell")
    editor = dialog.payload_editor
    assert editor is not None
    editor.fields["command"].input.setText("ls")
    payload = editor.payload()
    assert "timeout_s" not in payload  # "(default)": the task's timeout applies
    assert payload["check"] is True and payload["output_limit"] == 65536
    editor.fields["timeout_s"].input.setValue(3.0)
    assert editor.payload()["timeout_s"] == 3.0


def test_a_path_field_is_filled_from_a_non_modal_file_picker(qtbot, bridge, tmp_path):
    from PySide6.QtWidgets import QFileDialog, QLabel, QPushButton

    apk = tmp_path / "app-release.apk"
    apk.write_bytes(b"PK\x03\x04")
    dialog = open_dialog(qtbot, bridge)
    choose_kind(dialog, "adb.install")
    field = dialog.payload_editor.fields["apk"]
    labels = {label.text() for label in dialog.payload_editor.findChildren(QLabel)}
    assert {"apk *", "replace"} <= labels  # required fields are marked
    browse = next(b for b in field.findChildren(QPushButton) if b.text().startswith("Browse"))
    qtbot.mouseClick(browse, Qt.MouseButton.LeftButton)
    picker = field.findChild(QFileDialog)
    assert picker is not None and picker.isVisible()
    assert "Android packages (*.apk)" in picker.nameFilters()
    picker.selectFile(str(apk))
    picker.accept()
    assert field.input.text() == str(apk)
    assert dialog.validate() is not None  # the file exists: the spec is accepted
