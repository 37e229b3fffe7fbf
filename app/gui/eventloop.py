"""The console's asyncio loop: qasync's Qt loop with asyncio's own scheduling inside.

qasync turns every ``call_soon`` and every ``call_later`` into its own Qt timer (a
timer registered, fired through ``QObject::event`` and killed), and every
``call_soon_threadsafe`` into its own queued signal. With a hundred phones busy
the engine schedules thousands of callbacks a second (each future completion,
task step and store reply) and a timeout per attempt; a cancelled timeout stays
registered with Qt until it would have fired, so thousands of dead timers piled
up. This loop keeps asyncio's own model instead:

- a FIFO of ready handles, run in slices by one zero timer;
- a heap of timer handles (cancelled ones dropped, as asyncio does) behind one
  precise Qt timer set to the earliest deadline;
- one wake-up signal for however many callbacks other threads queued since the
  last slice.

A batch runs only the handles that were ready when it began; callbacks they
schedule wait for the next batch. A batch also gives the thread back to Qt after
``SLICE_BUDGET_S`` and goes on in the next slice, so paints and input are
served while a burst of engine work (a hundred jobs woken by one store commit)
is worked off.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import heapq
import threading
import time
from collections.abc import Callable
from typing import Any

import qasync
from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot

# How long one slice of ready callbacks may hold the GUI thread before Qt gets a
# turn: well inside a 60 Hz frame, and long enough that the hop back costs little.
SLICE_BUDGET_S = 0.004
# Past this many timer handles, rebuild the heap once half of them are cancelled.
_MIN_HEAP_FOR_CLEANUP = 100


class _Wakeup(QObject):
    """Carries "other threads queued callbacks" to the GUI thread.

    Always a queued connection: ``call_soon_threadsafe`` may also be called from the
    loop's own thread, and a direct call there would run other tasks inside the
    caller's step.
    """

    queued = Signal()

    def __init__(self, on_queued: Callable[[], None]) -> None:
        super().__init__()
        self._on_queued = on_queued
        self.queued.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    @Slot()
    def _deliver(self) -> None:
        self._on_queued()


class BatchingQEventLoop(qasync.QEventLoop):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._ready: collections.deque[asyncio.Handle] = collections.deque()
        # Appends from other threads are atomic on a deque; the lock only guards the
        # "is a wake-up already on its way" flag, so one signal covers a burst.
        self._incoming: collections.deque[asyncio.Handle] = collections.deque()
        self._incoming_lock = threading.Lock()
        self._wakeup_pending = False
        self._wakeup = _Wakeup(self._take_incoming)
        self._slice_pending = False  # a Python flag: asking the QTimer is a C++ call
        self._slice_timer = QTimer(singleShot=True, interval=0)
        self._slice_timer.timeout.connect(self._run_ready_batch)
        self._deadlines: list[asyncio.TimerHandle] = []
        self._cancelled_deadlines = 0
        self._armed_for: float | None = None
        self._deadline_timer = QTimer(singleShot=True, timerType=Qt.TimerType.PreciseTimer)
        self._deadline_timer.timeout.connect(self._fire_due_timers)
        super().__init__(*args, **kwargs)

    def call_soon(self, callback: Callable[..., Any], *args: Any,
                  context: contextvars.Context | None = None) -> asyncio.Handle:
        if self._debug:  # as asyncio does: the check costs more than the rest of the call
            self._check_callback(callback)
        handle = asyncio.Handle(callback, args, self, context=context)
        self._ready.append(handle)
        self._schedule_batch()
        return handle

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any,
                             context: contextvars.Context | None = None) -> asyncio.Handle:
        if self._debug:
            self._check_callback(callback)
        handle = asyncio.Handle(callback, args, self, context=context)
        self._incoming.append(handle)
        with self._incoming_lock:
            if self._wakeup_pending:
                return handle
            self._wakeup_pending = True
        self._wakeup.queued.emit()
        return handle

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any,
                   context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any,
                context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        if self._debug:
            self._check_callback(callback)
        timer = asyncio.TimerHandle(when, callback, args, self, context=context)
        heapq.heappush(self._deadlines, timer)
        timer._scheduled = True  # type: ignore[attr-defined]
        if self._deadlines[0] is timer:
            self._arm_deadline_timer()
        return timer

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        # Called by TimerHandle.cancel(): drop dead handles in bulk rather than leave
        # them in the heap (or, as qasync does, registered with Qt) until they are due.
        if not handle._scheduled:  # type: ignore[attr-defined]
            return
        self._cancelled_deadlines += 1
        if (len(self._deadlines) > _MIN_HEAP_FOR_CLEANUP
                and self._cancelled_deadlines * 2 > len(self._deadlines)):
            # ``handle`` is not marked cancelled yet: cancel() tells the loop first.
            live = [h for h in self._deadlines if not h._cancelled and h is not handle]
            for dead in self._deadlines:
                if dead._cancelled or dead is handle:
                    dead._scheduled = False  # type: ignore[attr-defined]
            heapq.heapify(live)
            self._deadlines = live
            self._cancelled_deadlines = 0

    def _arm_deadline_timer(self) -> None:
        deadlines = self._deadlines
        while deadlines and deadlines[0]._cancelled:
            heapq.heappop(deadlines)._scheduled = False  # type: ignore[attr-defined]
            self._cancelled_deadlines -= 1
        if not deadlines or self.is_closed():
            self._deadline_timer.stop()
            self._armed_for = None
            return
        when = deadlines[0].when()
        if self._armed_for is not None and self._armed_for <= when:
            return  # armed for this deadline (or earlier; it re-arms when it fires)
        self._armed_for = when
        # Qt timers count whole milliseconds: round up, so a timer never fires early.
        self._deadline_timer.start(max(0, int((when - self.time()) * 1000 + 0.999)))

    def _fire_due_timers(self) -> None:
        self._armed_for = None
        end = self.time() + self._clock_resolution
        deadlines = self._deadlines
        while deadlines and deadlines[0].when() <= end:
            timer = heapq.heappop(deadlines)
            timer._scheduled = False  # type: ignore[attr-defined]
            if timer._cancelled:
                self._cancelled_deadlines -= 1
            else:
                self._ready.append(timer)
        self._arm_deadline_timer()
        if self._ready and not self._slice_pending:
            self._run_ready_batch()  # already inside a Qt event: no need for a timer hop

    def _take_incoming(self) -> None:
        # Clear the flag before draining: a handle queued after this point either
        # is drained below or sends a new wake-up, so none is ever stranded.
        with self._incoming_lock:
            self._wakeup_pending = False
        while self._incoming:
            handle = self._incoming.popleft()
            if not handle.cancelled():
                self._ready.append(handle)
        if not self._slice_pending:
            self._run_ready_batch()  # already inside a Qt event: no need for a timer hop

    def _run_ready_batch(self) -> None:
        # Either the slice timer fired, or a wake-up or deadline calls this directly
        # because no slice was pending: no timer is left to stop.
        self._slice_pending = False
        ready = self._ready
        give_back_at = time.perf_counter() + SLICE_BUDGET_S
        for _ in range(len(ready)):
            if not ready:  # a nested Qt loop inside a callback ran the rest
                break
            handle = ready.popleft()
            if not handle._cancelled:
                handle._run()  # reports its own exceptions to the loop's handler
            if time.perf_counter() > give_back_at:
                break  # the rest of this batch stays first in line for the next slice
        if ready:
            self._schedule_batch()

    def _schedule_batch(self) -> None:
        if not self._slice_pending and not self.is_closed():
            self._slice_pending = True
            self._slice_timer.start()

    def close(self) -> None:
        super().close()
        self._slice_timer.stop()
        self._deadline_timer.stop()
        self._ready.clear()
        self._deadlines.clear()

    @staticmethod
    def _check_callback(callback: Callable[..., Any]) -> None:
        if asyncio.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with call_soon")
        if not callable(callback):
            raise TypeError(f"callback must be callable: {type(callback).__name__}")
