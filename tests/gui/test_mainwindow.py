"""The assembled console over a real engine: panes docked, live status, the self-test,
and closing asks the composition root to shut down (never stops the loop itself)."""

from __future__ import annotations

from app.core.paths import Paths
from app.gui.mainwindow import MainWindow
from tests.gui.conftest import run_async


def test_the_window_shows_every_pane_and_live_status(qtbot, gui_engine, gui_lab, tmp_path):
    window = MainWindow(gui_engine, paths=Paths(tmp_path / "data"), demo=True)
    qtbot.addWidget(window)
    window.show()
    window.engine_started()
    for dock in (window.queue_dock, window.history_dock, window.locks_dock,
                 window.alerts_dock):
        assert dock.widget() is not None
    qtbot.waitUntil(lambda: "idle 6" in window.status.devices_label.text(), timeout=5000)
    assert "up" in window.status.adb_label.text()
    assert window.status.engine_label.text() == "engine: running"
    # Ctrl+N is one window-wide action (never an ambiguous shortcut).
    assert window.queue.new_action.shortcut().toString() == "Ctrl+N"

    summary = run_async(qtbot, window.self_test(), timeout=60)
    assert summary == 0
    window.shutting_down()


def test_closing_the_window_requests_shutdown_and_saves_the_layout(qtbot, gui_engine,
                                                                   tmp_path):
    paths = Paths(tmp_path / "data")
    window = MainWindow(gui_engine, paths=paths)
    qtbot.addWidget(window)
    window.show()
    window.engine_started()
    with qtbot.waitSignal(window.close_requested, timeout=3000):
        window.close()
    window.shutting_down()
    saved = (paths.data_dir / "gui.ini").read_text()
    assert "[window]" in saved and "state=@ByteArray" in saved


def test_an_engine_alert_reaches_the_alert_list(qtbot, gui_engine, tmp_path):
    window = MainWindow(gui_engine, paths=Paths(tmp_path / "data"))
    qtbot.addWidget(window)
    window.engine_started()
    run_async(qtbot, gui_engine.alerts.raise_alert("test_alert", "phone lab is on fire",
                                                   subject="lab"))
    qtbot.waitUntil(lambda: window.alerts.model.rowCount() >= 1, timeout=3000)
    index = window.alerts.model.index(0, 0)
    assert "phone lab is on fire" in window.alerts.model.data(index)
    window.shutting_down()
