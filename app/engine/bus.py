"""The typed event bus between the engine and its observers (GUI, API, tests).

Events are published on the event-loop thread and delivered synchronously to
subscribers, which must be quick. ``Coalescer`` keeps only the newest event per
key and flushes at a bounded rate, so a burst of 1,000 updates costs an
observer one repaint.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from app.core.clock import now
from app.core.records import DeviceRecord, LockRecord, TaskRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    at: float = field(default_factory=now, kw_only=True)
    name: ClassVar[str] = "event"

    @property
    def key(self) -> Hashable:
        """Events with equal keys supersede each other when coalesced."""
        return (self.name, id(self))


@dataclass(frozen=True)
class DeviceView:
    """What observers need to show one device."""

    record: DeviceRecord
    dispatch: str  # DispatchState value
    task_uid: str | None = None
    task_kind: str | None = None
    task_started_at: float | None = None
    progress_percent: int | None = None
    progress_step: str | None = None
    progress_message: str | None = None
    held_by: str | None = None
    last_result: str | None = None

    @property
    def serial(self) -> str:
        return self.record.serial


@dataclass(frozen=True)
class DeviceChanged(Event):
    view: DeviceView
    name: ClassVar[str] = "device"

    @property
    def key(self) -> Hashable:
        return (self.name, self.view.serial)


@dataclass(frozen=True)
class TaskChanged(Event):
    task: TaskRecord
    name: ClassVar[str] = "task"

    @property
    def key(self) -> Hashable:
        return (self.name, self.task.uid)


@dataclass(frozen=True)
class ExecutionProgress(Event):
    task_uid: str
    execution_id: int
    serial: str | None
    percent: int | None
    message: str | None
    step: str | None
    name: ClassVar[str] = "progress"

    @property
    def key(self) -> Hashable:
        return (self.name, self.task_uid)


@dataclass(frozen=True)
class ExecutionFinished(Event):
    task_uid: str
    execution_id: int
    status: str
    serial: str | None
    error: str | None = None
    name: ClassVar[str] = "execution_finished"

    @property
    def key(self) -> Hashable:
        return (self.name, self.execution_id)


@dataclass(frozen=True)
class LockChanged(Event):
    lock_name: str
    lock: LockRecord | None  # None: released
    name: ClassVar[str] = "lock"

    @property
    def key(self) -> Hashable:
        return (self.name, self.lock_name)


@dataclass(frozen=True)
class AlertRaised(Event):
    kind: str
    message: str
    severity: str = "warning"
    subject: str = ""
    name: ClassVar[str] = "alert"


@dataclass(frozen=True)
class EngineState(Event):
    state: str  # starting | running | stopping | stopped
    message: str = ""
    name: ClassVar[str] = "engine"

    @property
    def key(self) -> Hashable:
        return (self.name,)


@dataclass(frozen=True)
class AdbServerState(Event):
    alive: bool
    message: str = ""
    version: int | None = None
    name: ClassVar[str] = "adb_server"

    @property
    def key(self) -> Hashable:
        return (self.name,)


@dataclass(frozen=True)
class QueueChanged(Event):
    queue: str
    name: ClassVar[str] = "queue"

    @property
    def key(self) -> Hashable:
        return (self.name, self.queue)


Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[tuple[Subscriber, tuple[type[Event], ...] | None]] = []
        # Who receives each event class, worked out once per class (thousands of events
        # a second, a handful of classes); dropped whenever the subscribers change.
        self._routes: dict[type[Event], tuple[Subscriber, ...]] = {}
        self.published = 0

    def subscribe(
        self, callback: Subscriber, types: tuple[type[Event], ...] | None = None
    ) -> Callable[[], None]:
        """Register ``callback``; returns a function that unsubscribes it."""
        entry = (callback, types)
        self._subscribers.append(entry)
        self._routes.clear()

        def unsubscribe() -> None:
            if entry in self._subscribers:
                self._subscribers.remove(entry)
                self._routes.clear()

        return unsubscribe

    def publish(self, event: Event) -> None:
        self.published += 1
        route = self._routes.get(type(event))
        if route is None:
            route = self._routes[type(event)] = tuple(
                callback for callback, types in self._subscribers
                if types is None or issubclass(type(event), types))
        for callback in route:
            try:
                callback(event)
            except Exception:  # an observer's bug must not stop the engine
                log.exception("event subscriber %r failed on %s", callback, event.name)


class Coalescer:
    """Collects events and hands the newest per key to ``flush`` at most
    ``1/interval`` times a second, on the given loop."""

    def __init__(
        self,
        bus: EventBus,
        flush: Callable[[list[Event]], Any],
        *,
        interval: float = 1 / 60,
        types: tuple[type[Event], ...] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._flush = flush
        self._interval = interval
        self._pending: dict[Hashable, Event] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._loop = loop or asyncio.get_event_loop()
        self._last_flush = 0.0
        self.received = 0
        self.flushes = 0
        self._unsubscribe = bus.subscribe(self._on_event, types)

    def close(self) -> None:
        self._unsubscribe()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _on_event(self, event: Event) -> None:
        self.received += 1
        self._pending.pop(event.key, None)  # keep arrival order of the newest
        self._pending[event.key] = event
        if self._handle is None:
            delay = max(0.0, self._last_flush + self._interval - self._loop.time())
            self._handle = self._loop.call_later(delay, self._do_flush)

    def _do_flush(self) -> None:
        self._handle = None
        self._last_flush = self._loop.time()
        events = list(self._pending.values())
        self._pending.clear()
        if events:
            self.flushes += 1
            try:
                self._flush(events)
            except Exception:
                log.exception("coalesced flush failed")
