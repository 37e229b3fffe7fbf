"""The GUI's view of the engine: bus events turned into coalesced Qt signals.

Widgets never touch engine internals; they bind to this object's signals and
call the engine's async methods through ``run``.

Events reach the widgets at a fixed cadence (:data:`FLUSH_INTERVAL_S`), newest
per subject: with 100 phones busy the engine publishes ~3,000 events a second,
about thirty a second per phone. An isolated event shows at once (the first
after a quiet interval is delivered immediately); under load a tile or a
progress bar moves twice a second, which an operator can still follow, and each
delivery then costs the loop one pass over the changed tiles instead of five.
Measured with 100 phones flat out (bench/gui_bench.py, batching loop): loop lag
p99 ~40 ms at 2 Hz, ~55 ms at 3 Hz, ~60-80 ms at 5 Hz. A delivery is cut into
slices of :data:`SLICE_EVENTS` events, each its own loop callback, so no single
callback holds the loop for long; a slice not yet delivered when newer events
arrive is superseded by them.

Signals:
    devices_changed(list): DeviceView objects whose tile changed.
    tasks_changed(list): TaskRecord objects that changed state.
    progress(list): ExecutionProgress events (newest per task).
    executions_finished(list): ExecutionFinished events.
    locks_changed(): a lock was taken or released.
    alert(object): an AlertRaised event.
    engine_state(str, str): state and message.
    adb_state(bool, str): whether the adb server answers, and why not.
    queues_changed(): a queue was paused, resumed or re-limited.
    error(str): an operator action failed (shown in the status bar).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Coroutine, Hashable
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.engine.bus import (
    AdbServerState,
    AlertRaised,
    Coalescer,
    DeviceChanged,
    EngineState,
    Event,
    ExecutionFinished,
    ExecutionProgress,
    LockChanged,
    QueueChanged,
    TaskChanged,
)
from app.engine.engine import Engine

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.5  # under load, engine events reach the widgets twice a second
SLICE_EVENTS = 40  # events handed to the widgets per loop callback


class EngineBridge(QObject):
    devices_changed = Signal(list)
    tasks_changed = Signal(list)
    progress = Signal(list)
    executions_finished = Signal(list)
    locks_changed = Signal()
    alert = Signal(object)
    engine_state = Signal(str, str)
    adb_state = Signal(bool, str)
    queues_changed = Signal()
    error = Signal(str)

    def __init__(self, engine: Engine, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self._tasks: set[asyncio.Task[Any]] = set()
        self._coalescer = Coalescer(engine.bus, self._flush, interval=FLUSH_INTERVAL_S)
        self._backlog: dict[Hashable, Event] = {}  # coalesced, not yet delivered, in order
        self._draining = False
        self._closed = False
        self.slices = 0  # deliveries to the widgets (tests check the slicing)

    def close(self) -> None:
        """Stop delivering: engine calls still running for widgets are cancelled, so
        nothing touches a widget after the window is gone."""
        self._closed = True
        self._coalescer.close()
        self._backlog.clear()
        for task in list(self._tasks):
            task.cancel()

    @property
    def received(self) -> int:
        return self._coalescer.received

    def run(self, coro: Coroutine[Any, Any, Any], *, what: str = "") -> asyncio.Task[Any]:
        """Run an engine call from a slot; failures are reported through ``error``."""
        task = asyncio.get_event_loop().create_task(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if t.cancelled() or self._closed:
                return
            exc = t.exception()
            if exc is not None:
                message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                log.warning("%s failed: %s", what or "action", message)
                self.error.emit(f"{what + ': ' if what else ''}{message}")

        task.add_done_callback(done)
        return task

    def _flush(self, events: list[Event]) -> None:
        for event in events:
            self._backlog.pop(event.key, None)  # a newer event supersedes one not delivered
            self._backlog[event.key] = event
        if not self._draining:
            self._draining = True
            self._drain()

    def _drain(self) -> None:
        if self._closed or not self._backlog:
            self._draining = False
            return
        keys = list(itertools.islice(self._backlog, SLICE_EVENTS))
        events = [self._backlog.pop(key) for key in keys]
        if self._backlog:
            asyncio.get_event_loop().call_soon(self._drain)  # the rest after other work
        else:
            self._draining = False
        self.slices += 1
        try:
            self._deliver(events)
        except Exception:  # a widget's bug must not stop later deliveries
            log.exception("delivering engine events failed")

    def _deliver(self, events: list[Event]) -> None:
        devices, tasks, progress, finished = [], [], [], []
        locks = queues = False
        for event in events:
            if isinstance(event, DeviceChanged):
                devices.append(event.view)
            elif isinstance(event, TaskChanged):
                tasks.append(event.task)
            elif isinstance(event, ExecutionProgress):
                progress.append(event)
            elif isinstance(event, ExecutionFinished):
                finished.append(event)
            elif isinstance(event, LockChanged):
                locks = True
            elif isinstance(event, QueueChanged):
                queues = True
            elif isinstance(event, AlertRaised):
                self.alert.emit(event)
            elif isinstance(event, EngineState):
                self.engine_state.emit(event.state, event.message)
            elif isinstance(event, AdbServerState):
                self.adb_state.emit(event.alive, event.message)
        if devices:
            self.devices_changed.emit(devices)
        if tasks:
            self.tasks_changed.emit(tasks)
        if progress:
            self.progress.emit(progress)
        if finished:
            self.executions_finished.emit(finished)
        if locks:
            self.locks_changed.emit()
        if queues:
            self.queues_changed.emit()
