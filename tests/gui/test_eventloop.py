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


def test_timers_fire_in_deadline_order_and_never_early(qtbot: Any, qt_loop: Any) -> None:
    fired: list[tuple[str, float]] = []
    start = qt_loop.time()
    for name, delay in [("c", 0.06), ("a", 0.02), ("b", 0.04), ("a2", 0.02)]:
        qt_loop.call_later(delay, lambda n=name, d=delay: fired.append((n, d)))
    qt_loop.call_at(start + 0.03, lambda: fired.append(("at", 0.03)))
    qtbot.waitUntil(lambda: len(fired) == 5, timeout=5000)
    assert [name for name, _ in fired] == ["a", "a2", "at", "b", "c"]


def test_sleep_waits_at_least_its_delay(qtbot: Any, qt_loop: Any) -> None:
    async def timed() -> list[float]:
        loop = asyncio.get_running_loop()
        waits = []
        for delay in (0.001, 0.0105, 0.03):
            t0 = loop.time()
            await asyncio.sleep(delay)
            waits.append(loop.time() - t0 - delay)
        return waits

    assert all(late >= 0 for late in run_async(qtbot, timed()))


def test_cancelled_timers_never_run_and_do_not_pile_up(qtbot: Any, qt_loop: Any) -> None:
    """Each attempt arms a timeout and cancels it when it ends: thousands of cancelled
    timers must not stay scheduled (qasync kept one Qt timer each until it was due)."""
    ran: list[int] = []
    for i in range(5000):
        qt_loop.call_later(3600, ran.append, i).cancel()
    kept = qt_loop.call_later(0.01, ran.append, -1)
    assert len(qt_loop._deadlines) < 200
    qtbot.waitUntil(lambda: ran == [-1], timeout=5000)
    assert kept.when() <= qt_loop.time()


def test_asyncio_timeout_interrupts_a_wait(qtbot: Any, qt_loop: Any) -> None:
    async def too_slow() -> str:
        try:
            async with asyncio.timeout(0.02):
                await asyncio.sleep(10)
        except TimeoutError:
            return "timed out"
        return "slept"

    assert run_async(qtbot, too_slow()) == "timed out"


def test_a_long_batch_gives_qt_a_turn_between_slices(qtbot: Any, qt_loop: Any) -> None:
    """A burst of ready callbacks (a hundred jobs woken by one store commit) is worked
    off in slices: a Qt timer due meanwhile fires before the burst is done."""
    import time

    from PySide6.QtCore import QTimer

    from app.gui.eventloop import SLICE_BUDGET_S

    order: list[str] = []

    def busy(i: int) -> None:
        if i == 0:  # due at once, while the rest of the burst is still waiting
            QTimer.singleShot(0, lambda: order.append("qt"))
        time.sleep(SLICE_BUDGET_S / 4)
        order.append(f"cb{i}")

    for i in range(40):  # ten slices' worth
        qt_loop.call_soon(busy, i)
    qtbot.waitUntil(lambda: len(order) == 41, timeout=10000)
    assert 0 < order.index("qt") < 40
    assert [o for o in order if o != "qt"] == [f"cb{i}" for i in range(40)]


def test_live_timers_survive_the_cleanup_of_cancelled_ones(qtbot: Any, qt_loop: Any) -> None:
    ran: list[int] = []
    keep = [qt_loop.call_later(0.05 + i / 1000, ran.append, i) for i in range(150)]
    for _ in range(1000):
        qt_loop.call_later(3600, ran.append, -1).cancel()
    assert qt_loop._cancelled_deadlines >= 0
    qtbot.waitUntil(lambda: len(ran) == 150, timeout=5000)
    assert ran == list(range(150)) and all(not h.cancelled() for h in keep)
    assert qt_loop._deadlines == [] and qt_loop._cancelled_deadlines == 0


def test_debug_mode_refuses_a_coroutine_function_as_a_callback(qt_loop: Any) -> None:
    """As in asyncio, the check runs in debug mode only (it costs more than the call)."""
    import pytest

    async def coro() -> None:
        return None

    qt_loop.set_debug(True)
    try:
        for schedule in (qt_loop.call_soon, qt_loop.call_soon_threadsafe,
                         lambda cb: qt_loop.call_later(1, cb)):
            with pytest.raises(TypeError, match="coroutines cannot be used"):
                schedule(coro)
    finally:
        qt_loop.set_debug(False)
