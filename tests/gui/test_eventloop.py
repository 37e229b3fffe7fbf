"""The console's batching qasync loop keeps asyncio's scheduling promises."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

from tests.gui.conftest import run_async


def test_call_soon_runs_in_fifo_order_and_skips_cancelled(qtbot: Any, qt_loop: Any) -> None:
    ran: list[int] = []
    handles = [qt_loop.call_soon(ran.append, i) for i in range(50)]
    handles[7].cancel()
    qtbot.waitUntil(lambda: len(ran) == 49, timeout=5000)
    assert ran == [i for i in range(50) if i != 7]


def test_callbacks_scheduled_by_a_batch_wait_for_the_next_one(qtbot: Any, qt_loop: Any) -> None:
    """A callback that keeps rescheduling itself must not starve Qt (or other callbacks)."""
    ticks: list[int] = []

    def again() -> None:
        ticks.append(1)
        if len(ticks) < 10_000:
            qt_loop.call_soon(again)

    qt_loop.call_soon(again)
    # If one batch ran its own descendants this would only return after all 10,000.
    qtbot.waitUntil(lambda: len(ticks) > 0, timeout=5000)
    assert len(ticks) < 10_000
    qtbot.waitUntil(lambda: len(ticks) == 10_000, timeout=20000)


def test_threadsafe_callbacks_from_many_threads_all_arrive_once(qtbot: Any, qt_loop: Any) -> None:
    arrived: list[tuple[int, int]] = []
    threads = [threading.Thread(target=lambda t=t: [qt_loop.call_soon_threadsafe(
        arrived.append, (t, i)) for i in range(2000)]) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    qtbot.waitUntil(lambda: len(arrived) == 16_000, timeout=10000)
    assert sorted(arrived) == [(t, i) for t in range(8) for i in range(2000)]
    for t in range(8):  # each thread's callbacks keep their order
        assert [i for tt, i in arrived if tt == t] == list(range(2000))


def test_threadsafe_call_from_the_loop_thread_never_runs_inside_the_caller(
        qtbot: Any, qt_loop: Any) -> None:
    ran: list[str] = []

    def outer() -> None:
        qt_loop.call_soon_threadsafe(ran.append, "inner")
        ran.append("outer done")

    qt_loop.call_soon(outer)
    qtbot.waitUntil(lambda: len(ran) == 2, timeout=5000)
    assert ran == ["outer done", "inner"]


def test_a_failing_callback_is_reported_and_the_batch_goes_on(qtbot: Any, qt_loop: Any) -> None:
    reported: list[dict[str, Any]] = []
    qt_loop.set_exception_handler(lambda _loop, context: reported.append(context))
    ran: list[str] = []
    try:
        qt_loop.call_soon(lambda: 1 / 0)
        qt_loop.call_soon(ran.append, "after")
        qtbot.waitUntil(lambda: ran == ["after"], timeout=5000)
    finally:
        qt_loop.set_exception_handler(None)
    assert isinstance(reported[0]["exception"], ZeroDivisionError)


def test_executor_round_trips_and_task_wakeups_work(qtbot: Any, qt_loop: Any) -> None:
    async def work(pool: concurrent.futures.Executor) -> list[int]:
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(*[loop.run_in_executor(pool, pow, i, 2)
                                         for i in range(100)])
        await asyncio.sleep(0.01)
        return list(results)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert run_async(qtbot, work(pool)) == [i * i for i in range(100)]


def test_a_nested_qt_loop_inside_a_callback_runs_the_rest_once(qtbot: Any, qt_loop: Any) -> None:
    """A callback that spins Qt (a modal dialog, a drag) lets later callbacks run inside
    it; the batch it interrupted must neither run them twice nor fail."""
    from PySide6.QtCore import QEventLoop, QTimer

    ran: list[str] = []

    def spins_qt() -> None:
        ran.append("outer")
        nested = QEventLoop()
        QTimer.singleShot(50, nested.quit)
        qt_loop.call_soon_threadsafe(ran.append, "from a thread")  # delivered meanwhile
        nested.exec()

    errors: list[dict[str, Any]] = []
    qt_loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        qt_loop.call_soon(spins_qt)
        qt_loop.call_soon(ran.append, "after")
        qtbot.waitUntil(lambda: len(ran) == 3, timeout=5000)
        qtbot.wait(50)
    finally:
        qt_loop.set_exception_handler(None)
    assert sorted(ran) == ["after", "from a thread", "outer"]
    assert errors == []
