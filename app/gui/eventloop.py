"""The console's asyncio loop: qasync's Qt loop with ready callbacks run in batches.

qasync turns every ``call_soon`` into its own zero-interval Qt timer (a timer
registered, fired through ``QObject::event`` and killed), and every
``call_soon_threadsafe`` into its own queued signal. With a hundred phones busy
the engine schedules thousands of callbacks a second (each future completion,
task step and store reply), and that per-callback Qt machinery was the largest
single cost on the GUI thread. This loop keeps asyncio's own model instead: a
FIFO of ready handles run in batches by one zero timer, and one wake-up signal
for however many callbacks other threads queued since the last batch.

A batch runs only the handles that were ready when it began; callbacks they
schedule wait for the next batch, so Qt paints and input are served between
batches exactly as asyncio serves I/O between iterations.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import threading
from collections.abc import Callable
from typing import Any

import qasync
from PySide6.QtCore import QObject, Qt, Signal, Slot


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
        self._batch_scheduled = False
        # Appends from other threads are atomic on a deque; the lock only guards the
        # "is a wake-up already on its way" flag, so one signal covers a burst.
        self._incoming: collections.deque[asyncio.Handle] = collections.deque()
        self._incoming_lock = threading.Lock()
        self._wakeup_pending = False
        self._wakeup = _Wakeup(self._take_incoming)
        super().__init__(*args, **kwargs)

    def call_soon(self, callback: Callable[..., Any], *args: Any,
                  context: contextvars.Context | None = None) -> asyncio.Handle:
        self._check_callback(callback)
        handle = asyncio.Handle(callback, args, self, context=context)
        self._ready.append(handle)
        self._schedule_batch()
        return handle

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any,
                             context: contextvars.Context | None = None) -> asyncio.Handle:
        self._check_callback(callback)
        handle = asyncio.Handle(callback, args, self, context=context)
        self._incoming.append(handle)
        with self._incoming_lock:
            if self._wakeup_pending:
                return handle
            self._wakeup_pending = True
        self._wakeup.queued.emit()
        return handle

    def _take_incoming(self) -> None:
        # Clear the flag before draining: a handle queued after this point either
        # is drained below or sends a new wake-up, so none is ever stranded.
        with self._incoming_lock:
            self._wakeup_pending = False
        while self._incoming:
            handle = self._incoming.popleft()
            if not handle.cancelled():
                self._ready.append(handle)
        if not self._batch_scheduled:
            self._run_ready_batch()  # already inside a Qt event: no need for a timer hop

    def _run_ready_batch(self) -> None:
        self._batch_scheduled = False
        for _ in range(len(self._ready)):
            if not self._ready:  # a nested Qt loop inside a callback ran the rest
                break
            handle = self._ready.popleft()
            if not handle.cancelled():
                handle._run()  # reports its own exceptions to the loop's handler
        if self._ready:
            self._schedule_batch()

    def _schedule_batch(self) -> None:
        if not self._batch_scheduled and not self.is_closed():
            self._batch_scheduled = True
            self._timer.add_callback(asyncio.Handle(self._run_ready_batch, (), self), 0)

    @staticmethod
    def _check_callback(callback: Callable[..., Any]) -> None:
        if asyncio.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with call_soon")
        if not callable(callback):
            raise TypeError(f"callback must be callable: {type(callback).__name__}")
