"""Store loaders coalesce requests and pace themselves by what a run costs."""

from __future__ import annotations

import time

from app.gui.panes.loader import MAX_SHARE, StoreLoader


def _slow_query() -> str:
    time.sleep(0.04)  # stands for a heavy read under load
    return "rows"


def _quick_query() -> str:
    return "rows"


def test_a_costly_query_repeats_less_often_than_a_cheap_one(qtbot, gui_engine):
    slow = StoreLoader(gui_engine.store, _slow_query, min_interval_ms=100)
    quick = StoreLoader(gui_engine.store, _quick_query, min_interval_ms=100)
    loads: list[str] = []
    slow.loaded.connect(lambda _rows: loads.append("slow"))
    quick.loaded.connect(lambda _rows: loads.append("quick"))
    slow.request()
    quick.request()
    qtbot.waitUntil(lambda: slow.runs == quick.runs == 1 and not slow.busy()
                    and not quick.busy(), timeout=3000)
    assert quick.interval_ms() == 100  # cheap: the configured rate
    assert slow.interval_ms() >= 0.04 / MAX_SHARE * 1000 * 0.95  # ~5 % of the store thread
    # Requested again at once: the quick one reloads soon, the slow one waits its turn.
    slow.request()
    quick.request()
    qtbot.waitUntil(lambda: quick.runs == 2, timeout=3000)
    qtbot.wait(150)
    assert slow.runs == 1
    qtbot.waitUntil(lambda: slow.runs == 2, timeout=3000)
    slow.close()
    quick.close()
