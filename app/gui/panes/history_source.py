"""Where the History pane's data comes from: store-thread queries and their delivery.

Everything here either runs on the engine's store thread (the functions handed
to ``engine.store.submit``) or brings a finished store Future back to the GUI
thread. The stats query is paced by its own cost, because the store thread is
shared with the engine's dispatching.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import peewee
from PySide6.QtCore import QObject, Qt, Signal

from app.core.enums import ExecStatus
from app.core.history import ExecutionFilter
from app.core.records import ExecutionRecord
from app.store import history
from app.store.models import Execution
from app.store.rows import tuples

MAX_STORE_SHARE = 0.05  # a repeated query may keep the store thread this busy at most
MAX_LIVE_INTERVAL_MS = 60_000


class StorePageSource:
    """Pages of executions from the store thread, newest or oldest first.

    The count of the current filter is remembered and passed to each window
    query, which would otherwise count again for every page.
    """

    def __init__(self, submit: Callable[..., Future[Any]], *, oldest_first: bool = False):
        self._submit = submit
        self.oldest_first = oldest_first
        self._totals: dict[ExecutionFilter, int] = {}

    def count(self, filter: ExecutionFilter) -> Future[int]:  # noqa: A002
        future: Future[int] = self._submit(history.count_executions, filter)
        future.add_done_callback(lambda f: self._remember(filter, f))
        return future

    def window(self, filter: ExecutionFilter, offset: int,  # noqa: A002
               limit: int) -> Future[list[ExecutionRecord]]:
        total = self._totals.get(filter)
        if self.oldest_first:
            return self._submit(oldest_first_window, filter, offset, limit, total)
        return self._submit(history.execution_window, filter, offset, limit, total)

    def _remember(self, filter: ExecutionFilter, future: Future[int]) -> None:  # noqa: A002
        if not future.cancelled() and future.exception() is None:
            if len(self._totals) > 16:
                self._totals.clear()
            self._totals[filter] = future.result()


def oldest_first_window(f: ExecutionFilter, offset: int, limit: int,
                        total: int | None = None) -> list[ExecutionRecord]:
    """Rows ``[offset, offset + limit)`` of the oldest-first order (runs on the store thread)."""
    if offset == 0 and total is None:  # the oldest rows need no count
        return history.oldest_executions(f, limit)
    size = history.count_executions(f) if total is None else total
    end = size - offset
    if end <= 0:
        return []
    start = max(0, end - limit)
    return list(reversed(history.execution_window(f, start, end - start, total=size)))


def status_counts(f: ExecutionFilter) -> dict[str, Any]:
    """Executions per status for the stats strip (runs on the store thread).

    One ``GROUP BY status`` (a covering-index scan without other conditions): a
    million rows cost ~0.1 s, where ``history.execution_stats`` also groups by
    module and task name and costs seconds. Returns lower-case status keys, plus
    "total" and "seconds" (how long the query took).
    """
    began = time.perf_counter()
    query = Execution.select(Execution.status, peewee.fn.COUNT(Execution.id))
    conditions = history.filter_conditions(f)
    if conditions:
        query = query.where(*conditions)
    out: dict[str, Any] = {status.value.lower(): 0 for status in ExecStatus}
    for status, count in tuples(query.group_by(Execution.status)):
        out[str(status).lower()] = int(count)
    out["total"] = sum(out[status.value.lower()] for status in ExecStatus)
    out["seconds"] = time.perf_counter() - began
    return out


def live_interval_ms(query_seconds: float, floor_ms: int) -> int:
    """How often a query costing ``query_seconds`` may repeat on the shared store thread."""
    wanted = int(query_seconds / MAX_STORE_SHARE * 1000)
    return max(floor_ms, min(MAX_LIVE_INTERVAL_MS, wanted))


class FutureDelivery(QObject):
    """Calls ``callback(future)`` on the GUI thread once a store Future is done."""

    _ready = Signal(object, object)

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self._ready.connect(self._on_ready, Qt.ConnectionType.QueuedConnection)

    def when_done(self, future: Future[Any], callback: Callable[[Future[Any]], None]) -> None:
        def emit(done: Future[Any]) -> None:
            with contextlib.suppress(RuntimeError):  # the pane is gone
                self._ready.emit(callback, done)

        future.add_done_callback(emit)

    def _on_ready(self, callback: Callable[[Future[Any]], None], future: Future[Any]) -> None:
        if not future.cancelled():
            callback(future)
