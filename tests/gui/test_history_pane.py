"""The History pane over a real engine, its store and the simulated lab.

Protects: the table's count is the store's count for every filter; filters
apply from the widgets (and bad ranges are explained, not applied); retry
re-enqueues a task that then runs; clone opens the New task dialog filled in;
CSV export writes exactly the filter's rows and no payloads; the detail pane
shows results and previews screenshot artifacts; new executions appear live.
"""

from __future__ import annotations

import csv
import threading
from typing import Any

import pytest
from PySide6.QtCore import QDateTime, Qt

from app.core.enums import ExecStatus, TaskState
from app.core.history import ExecutionFilter
from app.core.targets import Target
from app.core.taskspec import TaskSpec
from app.gui.bridge import EngineBridge
from app.gui.history_model import ExecutionHistoryModel
from app.gui.panes.history import HistoryPane
from app.gui.panes.history_export import CSV_FIELDS, export_csv
from app.store import history
from tests.gui.conftest import run_async

SECRET = "s3cret-in-payload"


def _run_all(qtbot: Any, engine: Any, specs: list[TaskSpec]) -> list[Any]:
    records = run_async(qtbot, engine.submit_many(specs))
    qtbot.waitUntil(lambda: all(run_async(qtbot, engine.get_task(r.uid)).state.is_terminal
                                for r in records), timeout=20000)
    return records


@pytest.fixture
def activity(qtbot: Any, gui_engine: Any, gui_lab: Any) -> dict[str, Any]:
    """Six successes, two failures (one fixable), one screenshot capture."""
    serial = gui_lab.serials[0]
    # The lab outlives this test: the "flaky" task must fail until a test fixes it.
    gui_engine.provider.shell(serial, "rm -f /sdcard/taskdesk-flag", timeout=10.0)
    ok = [TaskSpec(kind="adb.shell", payload={"command": f"echo {SECRET} {n}"}, source="gui",
                   created_by="alice") for n in range(6)]
    flaky = TaskSpec(kind="adb.shell", payload={"command": "cat /sdcard/taskdesk-flag"},
                     target=Target.device(serial), max_attempts=1, created_by="bob")
    broken = TaskSpec(kind="adb.shell", payload={"command": "exit 3"}, max_attempts=1,
                      queue="maint", created_by="bob")
    capture = TaskSpec(kind="demo.capture", payload={"steps": 2, "step_ms": 0,
                                                     "screenshot": True},
                       target=Target.device(serial), created_by="alice")
    records = _run_all(qtbot, gui_engine, [*ok, flaky, broken, capture])
    return {"serial": serial, "flaky": records[6], "broken": records[7],
            "capture": records[8]}


@pytest.fixture
def pane(qtbot: Any, gui_engine: Any, activity: dict[str, Any]) -> Any:
    bridge = EngineBridge(gui_engine)
    widget = HistoryPane(bridge)
    qtbot.addWidget(widget)
    widget.resize(1300, 700)
    widget.show()
    widget.engine_started()
    qtbot.waitUntil(lambda: widget.model.total() == 9 and widget.stats.get("total") == 9,
                    timeout=5000)
    widget.model.index(0, 0).data()  # the view asks for the first page anyway; wait for it
    qtbot.waitUntil(lambda: widget.model.record(0) is not None, timeout=5000)
    yield widget
    bridge.close()


def _store(qtbot: Any, engine: Any, fn: Any, *args: Any) -> Any:
    return engine.store.submit(fn, *args).result(timeout=10)


def _row_of_task(pane: HistoryPane, qtbot: Any, task_uid: str) -> int:
    model = pane.model
    for row in range(model.rowCount()):
        model.index(row, 0).data()  # asks for the page
    qtbot.waitUntil(lambda: all(model.record(r) is not None for r in range(model.rowCount())),
                    timeout=5000)
    return next(r for r in range(model.rowCount()) if model.record(r).task_id == task_uid)


def _select(pane: HistoryPane, qtbot: Any, task_uid: str) -> None:
    row = _row_of_task(pane, qtbot, task_uid)
    pane.table.selectRow(row)
    qtbot.waitUntil(lambda: pane.detail.record() is not None
                    and pane.detail.record().task_id == task_uid, timeout=3000)


def test_counts_and_stats_match_the_store_for_each_filter(qtbot, pane, gui_engine, grab_dir,
                                                          activity):
    assert pane.model.total() == _store(qtbot, gui_engine, history.count_executions,
                                        ExecutionFilter())
    assert pane.stats["success"] == 7 and pane.stats["failure"] == 2
    assert pane._chips["FAILURE"].text() == "FAILURE 2"
    assert pane.count_label.text() == "9 executions"

    qtbot.keyClicks(pane.filters.task_name.lineEdit(), "adb.shell")
    qtbot.keyClick(pane.filters.task_name.lineEdit(), Qt.Key.Key_Return)
    wanted = ExecutionFilter(task_name="adb.shell")
    qtbot.waitUntil(lambda: pane.model.current_filter() == wanted
                    and pane.model.total() == 8, timeout=3000)
    assert _store(qtbot, gui_engine, history.count_executions, wanted) == 8

    # The FAILURE chip narrows to failures of adb.shell.
    qtbot.mouseClick(pane._chips["FAILURE"], Qt.MouseButton.LeftButton)
    both = ExecutionFilter(task_name="adb.shell", statuses=(ExecStatus.FAILURE,))
    qtbot.waitUntil(lambda: pane.model.current_filter() == both and pane.model.total() == 2
                    and pane.stats.get("total") == 2, timeout=3000)
    assert pane.count_label.text() == "2 executions match"

    qtbot.keyClicks(pane.filters.created_by, "bob")  # applied after a short pause
    qtbot.waitUntil(lambda: pane.model.current_filter().created_by == "bob"
                    and not pane.model.is_counting(), timeout=3000)
    assert pane.model.total() == 2
    pane.filters.reset()
    qtbot.waitUntil(lambda: pane.model.total() == 9, timeout=3000)
    _select(pane, qtbot, activity["broken"].uid)
    qtbot.wait(50)  # let posted layout events land before grabbing
    pane.grab().save(str(grab_dir / "history-pane.png"))


def test_a_hidden_pane_does_not_refresh_until_shown(qtbot, pane, gui_engine):
    pane.hide()  # e.g. behind the Queue tab
    _run_all(qtbot, gui_engine, [TaskSpec(kind="adb.shell", payload={"command": "echo x"})] * 2)
    qtbot.wait(1500)  # past the live refresh interval
    assert pane.model.total() == 9 and pane.stats["total"] == 9
    pane.show()
    qtbot.waitUntil(lambda: pane.model.total() == 11 and pane.stats["total"] == 11,
                    timeout=5000)


def test_a_date_range_that_ends_before_it_starts_is_explained_not_applied(qtbot, pane):
    bar = pane.filters
    before = pane.model.current_filter()
    now = QDateTime.currentDateTime()
    bar.since_box.setChecked(True)
    bar.since.setDateTime(now.addSecs(3600))
    bar.until_box.setChecked(True)
    bar.until.setDateTime(now.addSecs(-3600))
    bar.apply_now()
    assert "before its end" in bar.error_text()
    assert pane.model.current_filter() == before
    bar.since.setDateTime(now.addSecs(-7200))
    bar.until.setDateTime(now.addSecs(7200))
    bar.apply_now()
    assert bar.error_text() == ""
    qtbot.waitUntil(lambda: pane.model.current_filter().since is not None
                    and pane.model.total() == 9, timeout=3000)


def test_retry_from_history_enqueues_a_new_task_that_runs(qtbot, pane, gui_engine, activity):
    flaky = activity["flaky"]
    _select(pane, qtbot, flaky.uid)
    assert pane.detail.record().status is ExecStatus.FAILURE
    assert "No such file" in pane.detail.error.toPlainText()
    assert pane.retry_action.isEnabled()
    gui_engine.provider.shell(activity["serial"], "echo ready > /sdcard/taskdesk-flag",
                              timeout=10.0)
    task = pane.retry_selected()
    qtbot.waitUntil(task.done, timeout=5000)
    retried = task.result()
    assert retried.uid != flaky.uid and retried.kind == flaky.kind
    assert retried.payload == flaky.payload and str(retried.target) == str(flaky.target)
    qtbot.waitUntil(lambda: run_async(qtbot, gui_engine.get_task(retried.uid)).state
                    is TaskState.SUCCEEDED, timeout=10000)
    # The new execution shows up without a manual refresh.
    qtbot.waitUntil(lambda: pane.model.total() == 10, timeout=5000)
    assert pane.stats.get("total") in (9, 10)  # the strip follows within a few seconds


def test_clone_and_edit_opens_the_new_task_dialog_filled_in(qtbot, pane, activity):
    broken = activity["broken"]
    _select(pane, qtbot, broken.uid)
    task = pane.clone_selected()
    qtbot.waitUntil(task.done, timeout=5000)
    task.result()
    dialog = pane.clone_dialog
    assert dialog is not None and dialog.isVisible()
    spec = dialog.spec()
    assert (spec.kind, spec.payload["command"], spec.queue) == ("adb.shell", "exit 3", "maint")
    assert spec.max_attempts == 1
    dialog.reject()


def test_csv_export_writes_the_rows_of_the_current_filter_and_no_payloads(
        qtbot, pane, gui_engine, tmp_path):
    pane.filters.set_statuses([ExecStatus.SUCCESS])
    wanted = ExecutionFilter(statuses=(ExecStatus.SUCCESS,))
    qtbot.waitUntil(lambda: pane.model.current_filter() == wanted, timeout=3000)
    target = tmp_path / "success.csv"
    with qtbot.waitSignal(pane.exporter.finished, timeout=10000) as done:
        pane.export_csv(str(target))
    assert done.args == [str(target), 7]
    assert pane.export_label.text() == f"Exported 7 rows to {target}"
    assert not (tmp_path / "success.csv.part").exists()
    text = target.read_text(encoding="utf-8")
    assert SECRET not in text
    rows = list(csv.DictReader(text.splitlines()))
    page = _store(qtbot, gui_engine, history.query_executions, wanted)
    assert [int(r["id"]) for r in rows] == [e.id for e in page.items]
    assert list(rows[0]) == list(CSV_FIELDS)
    assert {r["status"] for r in rows} == {"SUCCESS"}
    assert all(r["created_at"].endswith("Z") and float(r["duration"]) >= 0 for r in rows)

    # The Export button's path: a non-modal save dialog whose choice starts the export.
    dialog = pane.open_export_dialog()
    assert dialog.isVisible()
    again = tmp_path / "again.csv"
    with qtbot.waitSignal(pane.exporter.finished, timeout=10000):
        dialog.fileSelected.emit(str(again))
    assert again.read_text(encoding="utf-8") == text
    dialog.reject()

    # A cancelled export leaves neither the file nor its partial copy behind.
    stop = threading.Event()
    stop.set()
    with pytest.raises(InterruptedError):
        export_csv(gui_engine.store.submit, wanted, tmp_path / "never.csv", cancel=stop)
    assert sorted(p.name for p in tmp_path.glob("*.csv*")) == ["again.csv", "success.csv"]


def test_detail_shows_the_result_and_previews_the_screenshot(qtbot, pane, activity):
    _select(pane, qtbot, activity["capture"].uid)
    detail = pane.detail
    assert '"items_collected": 2' in detail.result.toPlainText()
    assert detail.artifacts_model.rowCount() == 1
    assert detail.preview.pixmap() is not None and not detail.preview.pixmap().isNull()
    folder = detail.artifact_folder()
    assert folder is not None and folder.name == activity["capture"].uid
    assert not pane.retry_action.isEnabled() or detail.record().status.is_terminal


def test_clicking_created_shows_the_oldest_first(qtbot, pane):
    newest = pane.model.record(0)
    header = pane.table.horizontalHeader()
    header.sectionClicked.emit(ExecutionHistoryModel.CREATED)
    qtbot.waitUntil(lambda: pane.model.record(0) is not None
                    and pane.model.record(0).id != newest.id, timeout=3000)
    oldest = pane.model.record(0)
    assert oldest.created_at <= newest.created_at
    assert header.sortIndicatorOrder() == Qt.SortOrder.AscendingOrder
    pane.model.index(8, 0).data()
    qtbot.waitUntil(lambda: pane.model.record(8) is not None, timeout=3000)
    assert pane.model.record(8).id == newest.id


def test_the_pane_reads_well_in_the_dark_theme(qtbot, pane, themed, activity, grab_dir):
    themed("dark")
    _select(pane, qtbot, activity["capture"].uid)
    pane.detail.tabs.setCurrentIndex(pane.detail.tabs.count() - 1)  # artifacts + preview
    qtbot.wait(50)  # let posted palette and layout events land before grabbing
    pane.grab().save(str(grab_dir / "history-pane-dark.png"))
    assert pane.detail.title.text().count("SUCCESS") == 1


MILLION = 1_000_000


def _fill_million(block: int = 1000) -> None:
    """One block by insert_many, the rest copied by SQLite with shifted ids and times."""
    import time as _time

    from peewee import fn

    from app.store.models import Execution

    start = _time.time() - MILLION  # one a second, newest now: nothing is old enough to purge
    statuses = ("SUCCESS", "SUCCESS", "SUCCESS", "FAILURE", "REVOKED")
    Execution.insert_many([{
        "task_id": f"task-{i:07d}", "task_name": f"capture_{i % 7}", "module": "default",
        "status": statuses[i % len(statuses)], "attempt": 1, "device_serial": f"SER{i % 40}",
        "created_by": "ops", "args": [], "kwargs": {}, "metadata": {},
        "created_at": start + i, "started_at": start + i, "finished_at": start + i + 0.5,
    } for i in range(block)]).execute()
    for n in range(1, MILLION // block):
        copy = Execution.select(
            fn.printf("task-%07d", Execution.id - 1 + n * block), Execution.task_name,
            Execution.module, Execution.status, Execution.attempt, Execution.device_serial,
            Execution.created_by, Execution.args, Execution.kwargs, Execution.metadata,
            Execution.created_at + n * block, Execution.started_at + n * block,
            Execution.finished_at + n * block,
        ).where(Execution.id <= block)
        Execution.insert_from(copy, [
            Execution.task_id, Execution.task_name, Execution.module, Execution.status,
            Execution.attempt, Execution.device_serial, Execution.created_by, Execution.args,
            Execution.kwargs, Execution.metadata, Execution.created_at, Execution.started_at,
            Execution.finished_at]).execute()


@pytest.mark.slow
def test_a_million_executions_paint_and_scroll_to_the_end_quickly(qtbot, qt_loop, tmp_path):
    import time as _time

    from app.core.paths import Paths
    from app.engine.engine import Engine

    engine = Engine(paths=Paths(tmp_path / "data"), provider=None, host_enabled=False)
    run_async(qtbot, engine.start())
    try:
        run_async(qtbot, engine.store.call(_fill_million), timeout=300)
        bridge = EngineBridge(engine)
        widget = HistoryPane(bridge)
        qtbot.addWidget(widget)
        widget.resize(1300, 700)
        widget.show()
        began = _time.perf_counter()
        widget.engine_started()
        qtbot.waitUntil(lambda: widget.model.total() == MILLION
                        and widget.model.record(0) is not None, timeout=10000)
        widget.table.viewport().repaint()
        first_paint = _time.perf_counter() - began
        qtbot.waitUntil(lambda: widget.stats.get("total") == MILLION, timeout=10000)
        stats = widget.stats["seconds"]
        began = _time.perf_counter()
        widget.table.scrollToBottom()
        widget.table.viewport().repaint()  # asks for the last page
        qtbot.waitUntil(lambda: widget.model.record(MILLION - 1) is not None, timeout=10000)
        widget.table.viewport().repaint()
        to_end = _time.perf_counter() - began
        print(f"\n1,000,000 executions: first paint {first_paint * 1000:.0f} ms, "
              f"scroll to end {to_end * 1000:.0f} ms, stats query {stats * 1000:.0f} ms")
        assert widget.model.record(MILLION - 1).task_id == "task-0000000"
        # Generous bounds (a shared 2-core machine); typical: ~0.2 s, ~0.05 s, ~0.15 s.
        assert first_paint < 1.0 and to_end < 1.0 and stats < 1.0
        bridge.close()
    finally:
        run_async(qtbot, engine.stop())
