"""The Queue pane over a real engine: rows, filters, coalesced reloads, progress in
place, cancel (a running task is revoked), priority, pause/resume and limits."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtWidgets import QApplication

from app.core.enums import ExecStatus, Priority, TaskState
from app.core.targets import Target
from app.core.taskspec import TaskSpec
from app.gui.bridge import EngineBridge
from app.gui.panes.cell_delegate import CellDelegate
from app.gui.panes.queue import EMPTY_TEXT, NO_MATCH_TEXT, QueuePane
from app.gui.panes.queue_model import Col
from app.gui.theme import apply_theme, contrast_ratio, dark_palette, light_palette
from app.store import audit, executions, queues
from tests.gui.conftest import run_async


@pytest.fixture
def bridge(gui_engine: Any) -> Any:
    bridge = EngineBridge(gui_engine)
    yield bridge
    bridge.close()


def make_pane(qtbot: Any, bridge: EngineBridge, **kwargs: Any) -> QueuePane:
    pane = QueuePane(bridge, **kwargs)
    qtbot.addWidget(pane)
    pane.resize(1200, 420)
    pane.show()
    qtbot.waitExposed(pane)
    pane.engine_started()
    return pane


def park(qtbot: Any, engine: Any, queue: str, specs: list[TaskSpec]) -> list[Any]:
    """Enqueue into a paused queue so the tasks stay pending."""
    run_async(qtbot, engine.set_queue_paused(queue, True, actor="test"))
    return run_async(qtbot, engine.submit_many(specs))


def select_uids(pane: QueuePane, uids: set[str]) -> None:
    selection = pane.view.selectionModel()
    selection.clearSelection()
    for row in range(pane.model.rowCount()):
        index = pane.model.index(row, 0)
        if index.data(Qt.ItemDataRole.UserRole + 1).uid in uids:
            selection.select(index, QItemSelectionModel.SelectionFlag.Select
                             | QItemSelectionModel.SelectionFlag.Rows)


def shown_uids(pane: QueuePane) -> set[str]:
    return {pane.model.index(r, 0).data(Qt.ItemDataRole.UserRole + 1).uid
            for r in range(pane.model.rowCount())}


def test_waiting_tasks_are_listed_filtered_and_counted(qtbot, bridge, gui_engine):
    specs = ([TaskSpec(kind="adb.shell", payload={"command": f"echo {i}"}, queue="parked")
              for i in range(5)]
             + [TaskSpec(kind="adb.reboot", queue="parked", priority=Priority.HIGH)] * 3)
    records = park(qtbot, gui_engine, "parked", specs)
    pane = make_pane(qtbot, bridge, limit=6)
    qtbot.waitUntil(lambda: pane.model.rowCount() == 6, timeout=5000)
    # The oldest six of eight, and the pane says so.
    assert "showing 6 of 8" in pane.summary.text()
    first = pane.model.record(0)
    assert first is not None and first.uid == records[0].uid
    row = pane.model.row_of(records[0].uid)
    assert pane.model.index(row, Col.STATE).data() == "pending (paused)"
    assert pane.model.index(row, Col.ATTEMPTS).data() == "0/3"
    assert pane.model.index(row, Col.TARGET).data() == "any"
    assert pane.stack.currentIndex() == 0

    pane.kind_box.setCurrentIndex(pane.kind_box.findData("adb.reboot"))
    assert shown_uids(pane) == {records[5].uid}
    pane.kind_box.setCurrentIndex(0)
    qtbot.keyClicks(pane.search, "echo 3")
    assert shown_uids(pane) == {records[3].uid}
    qtbot.keyClicks(pane.search, "zzz")
    assert pane.model.rowCount() == 0
    assert pane.stack.currentIndex() == 1 and pane.empty_label.text() == NO_MATCH_TEXT
    qtbot.mouseClick(pane.empty_clear, Qt.MouseButton.LeftButton)
    assert pane.model.rowCount() == 6 and pane.stack.currentIndex() == 0
    pane.state_box.setCurrentIndex(pane.state_box.findData("running"))
    assert pane.model.rowCount() == 0


def test_an_empty_queue_says_how_to_add_work(qtbot, bridge):
    pane = make_pane(qtbot, bridge)
    qtbot.waitUntil(lambda: pane._loader is not None and pane._loader.runs >= 1
                    and not pane._loader.busy(), timeout=5000)
    assert pane.stack.currentIndex() == 1
    assert pane.empty_label.text() == EMPTY_TEXT
    assert pane.empty_new.isVisibleTo(pane) and pane.empty_bulk.isVisibleTo(pane)
    assert not pane.cancel_action.isEnabled() and not pane.pause_button.isEnabled()


def test_a_burst_of_task_events_costs_a_few_merged_reloads(qtbot, bridge, gui_engine):
    pane = make_pane(qtbot, bridge)
    run_async(qtbot, gui_engine.set_queue_paused("burst", True, actor="test"))
    resets = pane.model.resets
    inserted: list[int] = []
    pane.model.rowsInserted.connect(lambda _p, first, last: inserted.append(last - first + 1))
    runs_before = pane._loader.runs
    for _ in range(10):  # ten submits of 100: 1,000 task events in a burst
        run_async(qtbot, gui_engine.submit_many(
            [TaskSpec(kind="adb.reboot", queue="burst")] * 100))
    qtbot.waitUntil(lambda: pane.model.rowCount() == 1000, timeout=10000)
    qtbot.wait(400)
    runs = pane._loader.runs - runs_before
    assert 1 <= runs <= 10, runs
    assert pane.model.resets == resets  # merged, never reset
    assert sum(inserted) == 1000


def test_progress_patches_cells_without_reloading(qtbot, bridge, gui_engine, gui_lab):
    pane = make_pane(qtbot, bridge)
    changed_progress: list[int] = []
    pane.model.dataChanged.connect(
        lambda a, b, roles=(): changed_progress.append(a.column())
        if a.column() == b.column() == Col.PROGRESS else None)
    record = run_async(qtbot, gui_engine.submit(TaskSpec(
        kind="demo.capture", payload={"steps": 8, "step_ms": 250},
        target=Target.device(gui_lab.serials[0]))))
    qtbot.waitUntil(lambda: pane.model.row_of(record.uid) is not None, timeout=5000)

    def percent_shown() -> bool:
        row = pane.model.row_of(record.uid)
        return (row is not None and "%" in (pane.model.index(row, Col.PROGRESS).data() or "")
                and pane.model.index(row, Col.STATE).data() == "running")

    qtbot.waitUntil(percent_shown, timeout=10000)
    row = pane.model.row_of(record.uid)
    assert pane.model.index(row, Col.STATE).data() == "running"
    assert pane.model.index(row, Col.DEVICE).data() == gui_lab.serials[0]
    assert isinstance(pane.model.index(row, Col.PROGRESS).data(Qt.ItemDataRole.UserRole + 3),
                      int)
    # Later steps patch the cell in place from progress events, without a reload.
    qtbot.waitUntil(lambda: bool(changed_progress), timeout=5000)
    run_async(qtbot, gui_engine.cancel(record.uid, actor="test"))
    qtbot.waitUntil(lambda: pane.model.row_of(record.uid) is None, timeout=5000)


def test_cancel_from_the_pane_revokes_a_running_task(qtbot, bridge, gui_engine, gui_lab):
    serial = gui_lab.serials[1]
    record = run_async(qtbot, gui_engine.submit(TaskSpec(
        kind="adb.shell", payload={"command": "sleep 60"}, target=Target.device(serial),
        max_attempts=1)))
    pane = make_pane(qtbot, bridge)

    def running_row() -> bool:
        row = pane.model.row_of(record.uid)
        return row is not None and pane.model.index(row, Col.STATE).data() == "running"

    qtbot.waitUntil(running_row, timeout=10000)
    select_uids(pane, {record.uid})
    assert pane.cancel_action.isEnabled()
    pane.view.setFocus()
    pane.activateWindow()
    qtbot.keyClick(pane.view, Qt.Key.Key_Delete)  # one task: no confirmation

    def revoked() -> bool:
        rows = run_async(qtbot, gui_engine.store.call(executions.executions_for_task,
                                                      record.uid))
        return bool(rows) and rows[-1].status is ExecStatus.REVOKED

    qtbot.waitUntil(revoked, timeout=10000)
    assert run_async(qtbot, gui_engine.get_task(record.uid)).state is TaskState.CANCELLED
    qtbot.waitUntil(lambda: pane.model.row_of(record.uid) is None, timeout=5000)


def test_cancelling_several_asks_first(qtbot, bridge, gui_engine):
    records = park(qtbot, gui_engine, "parked", [TaskSpec(kind="adb.reboot",
                                                          queue="parked")] * 3)
    pane = make_pane(qtbot, bridge)
    qtbot.waitUntil(lambda: pane.model.rowCount() == 3, timeout=5000)
    select_uids(pane, {records[0].uid, records[1].uid})
    pane.cancel_action.trigger()
    box = pane._confirm_box
    qtbot.waitUntil(box.isVisible, timeout=3000)
    assert "Cancel 2 tasks?" in box.text()
    confirm = next(b for b in box.buttons() if b.text() == "Cancel 2 tasks")
    qtbot.mouseClick(confirm, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: pane.model.rowCount() == 1, timeout=5000)
    assert pane.model.record(0).uid == records[2].uid
    for record in records[:2]:
        assert run_async(qtbot, gui_engine.get_task(record.uid)).state is TaskState.CANCELLED


def test_priority_pause_resume_and_concurrency_from_the_pane(qtbot, bridge, gui_engine):
    records = park(qtbot, gui_engine, "night", [TaskSpec(kind="adb.reboot", queue="night")])
    pane = make_pane(qtbot, bridge)
    qtbot.waitUntil(lambda: pane.model.rowCount() == 1, timeout=5000)

    select_uids(pane, {records[0].uid})
    pane.priority_actions[Priority.CRITICAL].trigger()
    qtbot.waitUntil(lambda: pane.model.index(0, Col.PRIORITY).data() == "critical",
                    timeout=5000)
    assert run_async(qtbot, gui_engine.get_task(records[0].uid)).priority is Priority.CRITICAL

    pane.queue_box.setCurrentIndex(pane.queue_box.findData("night"))
    assert pane.pause_button.text() == "Resume queue"
    assert pane.queue_counts.text().startswith("PAUSED")
    qtbot.mouseClick(pane.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: pane.pause_button.text() == "Pause queue", timeout=5000)
    stored = run_async(qtbot, gui_engine.store.call(queues.get_queue, "night"))
    assert not stored.paused
    # Resumed: the parked task runs now.
    qtbot.waitUntil(lambda: pane.model.rowCount() == 0, timeout=15000)
    qtbot.mouseClick(pane.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: pane.pause_button.text() == "Resume queue", timeout=5000)
    assert run_async(qtbot, gui_engine.store.call(queues.get_queue, "night")).paused
    entries = run_async(qtbot, gui_engine.store.call(audit.list_audit, 20, None,
                                                     subject="night"))
    assert [e.action for e in entries[:2]] == ["queue.pause", "queue.resume"]

    pane.concurrency.setValue(3)
    qtbot.waitUntil(lambda: run_async(qtbot, gui_engine.store.call(
        queues.get_queue, "night")).concurrency == 3, timeout=5000)


def test_grabs_of_a_busy_queue_read_in_both_themes(qtbot, bridge, gui_engine, gui_lab,
                                                   grab_dir):
    park(qtbot, gui_engine, "parked", [
        TaskSpec(kind="adb.install", payload={"apk": "/tmp/app-release.apk"}, queue="parked",
                 target=Target.selector(["lab-a"]), priority=Priority.HIGH),
        TaskSpec(kind="adb.shell", payload={"command": "dumpsys battery"}, queue="parked"),
    ])
    run_async(qtbot, gui_engine.submit_many([
        TaskSpec(kind="demo.capture", payload={"steps": 20, "step_ms": 400},
                 target=Target.device(serial)) for serial in gui_lab.serials[:3]]))
    pane = make_pane(qtbot, bridge)

    def progressing() -> bool:
        percents = [pane.model.index(r, Col.PROGRESS).data(Qt.ItemDataRole.UserRole + 3)
                    for r in range(pane.model.rowCount())]
        return sum(isinstance(p, int) and p >= 15 for p in percents) >= 2

    qtbot.waitUntil(progressing, timeout=10000)
    app = QApplication.instance()
    for mode, palette in (("light", light_palette()), ("dark", dark_palette())):
        apply_theme(app, mode)
        qtbot.wait(50)
        assert pane.grab().save(str(grab_dir / f"queue-pane-{mode}.png"))
        bar, text = CellDelegate.fill_colour(palette)
        assert contrast_ratio(bar, text) >= 4.5
    apply_theme(app, "light")
    for uid in {pane.model.record(r).uid for r in range(pane.model.rowCount())}:
        run_async(qtbot, gui_engine.cancel(uid, actor="test"))


def _record(i: int, state: TaskState = TaskState.PENDING, priority: int = 1) -> Any:
    from app.core.records import TaskRecord

    return TaskRecord(id=i, uid=f"t{i:05d}", kind="adb.shell", payload={"command": f"echo {i}"},
                      queue="default", priority=Priority(priority), target=Target.any(),
                      state=state, attempts=0, max_attempts=3, timeout_s=300.0,
                      created_at=1_700_000_000.0 + i, updated_at=1_700_000_000.0 + i)


def test_reloads_merge_and_sorting_keeps_the_selection(qtbot):
    """Without an engine: the model merges reloads into row signals (never a reset) and
    a header sort moves the selection with its task."""
    from PySide6.QtWidgets import QTableView

    from app.gui.panes.queue_model import QueueTaskModel

    model = QueueTaskModel()
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.setSortingEnabled(True)
    view.sortByColumn(Col.ID, Qt.SortOrder.AscendingOrder)
    model.set_tasks([_record(i, priority=i % 4) for i in range(1, 2001)])
    assert model.rowCount() == 2000 and model.resets == 0
    signals: list[str] = []
    model.rowsRemoved.connect(lambda *_: signals.append("removed"))
    model.rowsInserted.connect(lambda *_: signals.append("inserted"))
    model.dataChanged.connect(lambda *_: signals.append("changed"))
    view.selectionModel().select(model.index(model.row_of("t00500"), 0),
                                 QItemSelectionModel.SelectionFlag.Select
                                 | QItemSelectionModel.SelectionFlag.Rows)
    # Ten tasks finished, five new ones, one started running.
    fresh = ([_record(i, priority=i % 4) for i in range(11, 2001) if i != 700]
             + [_record(700, TaskState.RUNNING, 700 % 4)]
             + [_record(i) for i in range(3000, 3005)])
    model.set_tasks(fresh)
    assert model.rowCount() == 1995 and model.resets == 0
    assert signals.count("removed") == 1 and signals.count("inserted") == 1
    assert signals.count("changed") == 1
    assert [model.record(r).id for r in (0, 1994)] == [11, 3004]

    view.sortByColumn(Col.PRIORITY, Qt.SortOrder.DescendingOrder)
    priorities = [model.record(r).priority for r in range(model.rowCount())]
    assert priorities == sorted(priorities, reverse=True)
    selected = view.selectionModel().selectedRows()
    assert [model.record(i.row()).uid for i in selected] == ["t00500"]
    # A reload while sorted by priority keeps the rows sorted.
    model.set_tasks(fresh + [_record(4000, priority=3)])
    assert model.record(0).priority is Priority.CRITICAL
    priorities = [model.record(r).priority for r in range(model.rowCount())]
    assert priorities == sorted(priorities, reverse=True)


def test_new_task_from_the_pane_appears_in_it(qtbot, bridge, gui_engine):
    from app.gui.dialogs.new_task import NewTaskDialog

    run_async(qtbot, gui_engine.set_queue_paused("parked", True, actor="test"))
    pane = make_pane(qtbot, bridge)
    qtbot.waitUntil(lambda: pane._loader.runs >= 1 and not pane._loader.busy(), timeout=5000)
    pane.activateWindow()
    pane.view.setFocus()
    qtbot.waitUntil(pane.isActiveWindow, timeout=2000)
    qtbot.keyClick(pane.view, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    dialog = pane.findChild(NewTaskDialog)
    assert dialog is not None and dialog.isVisible()
    dialog.kind_box.setCurrentIndex(dialog.kind_box.findData("adb.reboot"))
    dialog.set_queue("parked")
    qtbot.mouseClick(dialog.submit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: pane.model.rowCount() == 1, timeout=5000)
    assert pane.model.record(0).kind == "adb.reboot"
    assert pane.stack.currentIndex() == 0


def test_a_hidden_pane_does_not_reload_until_shown(qtbot, bridge, gui_engine):
    pane = make_pane(qtbot, bridge)
    qtbot.waitUntil(lambda: pane._loader.runs >= 1 and not pane._loader.busy(), timeout=5000)
    pane.hide()
    runs = pane._loader.runs
    park(qtbot, gui_engine, "parked", [TaskSpec(kind="adb.reboot", queue="parked")] * 5)
    qtbot.wait(500)
    assert pane._loader.runs == runs and pane.model.rowCount() == 0
    pane.show()
    qtbot.waitUntil(lambda: pane.model.rowCount() == 5, timeout=5000)
