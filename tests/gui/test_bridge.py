"""The bridge turns engine events into coalesced Qt signals the widgets bind to."""

from __future__ import annotations

from app.core.enums import TaskState
from app.core.taskspec import TaskSpec
from app.gui.bridge import EngineBridge
from tests.gui.conftest import run_async


def test_a_task_run_reaches_the_gui_as_coalesced_signals(qtbot, gui_engine, gui_lab):
    bridge = EngineBridge(gui_engine)
    devices, tasks, finished = [], [], []
    bridge.devices_changed.connect(devices.extend)
    bridge.tasks_changed.connect(tasks.extend)
    bridge.executions_finished.connect(finished.extend)

    # Quick shells, and captures that keep a phone busy longer than a delivery interval
    # (a state shorter than that may be superseded by the newest one before delivery).
    records = run_async(qtbot, gui_engine.submit_many(
        [TaskSpec(kind="adb.shell", payload={"command": "echo hi"})] * 24
        + [TaskSpec(kind="demo.capture", payload={"steps": 4, "step_ms": 150})] * 6))
    qtbot.waitUntil(lambda: len(finished) >= 30, timeout=20000)
    assert {e.status for e in finished} == {"SUCCESS"}
    assert {t.uid for t in tasks} >= {r.uid for r in records}
    assert any(v.dispatch == "busy" for v in devices)
    # Coalescing: far fewer signal emissions than engine events.
    assert bridge.received > len(finished)
    states = {run_async(qtbot, gui_engine.get_task(r.uid)).state for r in records}
    assert states == {TaskState.SUCCEEDED}
    bridge.close()


def test_a_failing_action_is_reported_not_raised(qtbot, gui_engine):
    bridge = EngineBridge(gui_engine)
    errors: list[str] = []
    bridge.error.connect(errors.append)
    bridge.run(gui_engine.cancel("no-such-task", actor="t"), what="cancel")
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    assert errors[0].startswith("cancel:") and "no-such-task" in errors[0]
    bridge.close()


def test_a_burst_reaches_the_widgets_in_slices_newest_per_subject(qtbot, gui_engine):
    from app.engine.bus import ExecutionProgress
    from app.gui.bridge import SLICE_EVENTS

    bridge = EngineBridge(gui_engine)
    batches: list[list[ExecutionProgress]] = []
    bridge.progress.connect(lambda events: batches.append(list(events)))

    def progress(i: int, percent: int) -> ExecutionProgress:
        return ExecutionProgress(task_uid=f"t{i}", execution_id=i, serial=None,
                                 percent=percent, message=None, step=None)

    for i in range(100):
        gui_engine.bus.publish(progress(i, 10))
    gui_engine.bus.publish(progress(5, 90))  # supersedes the first one for t5
    qtbot.waitUntil(lambda: sum(map(len, batches)) >= 100, timeout=3000)
    qtbot.wait(50)
    assert len(batches) >= 3 and max(map(len, batches)) <= SLICE_EVENTS
    delivered = [event for batch in batches for event in batch]
    assert len(delivered) == 100  # every subject once: t5's older event never went out
    assert {e.task_uid: e.percent for e in delivered}["t5"] == 90
    bridge.close()
