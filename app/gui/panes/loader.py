"""Coalesced store reads for panes: one query in flight, a bounded reload rate.

A pane that refreshes on every engine event would reload a thousand times for
a burst of a thousand task changes. :class:`StoreLoader` collapses requests:
while a query runs, further requests only mark the result stale (one more run
follows), and runs start at most once per ``min_interval_ms``, or less often
when a run is costly: the time it took (the query on the store thread plus the
slots that applied its result) may be at most :data:`MAX_SHARE` of the time
between runs, so a heavy reload under load paces itself instead of starving
the engine's store writes and the event loop. The query runs on the engine's
store thread; its result crosses back to the GUI thread through a queued
signal, so slots always run on the GUI thread.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QWidget

from app.engine.storethread import StoreThread

log = logging.getLogger(__name__)

MAX_SHARE = 0.05  # of the time between two runs, a run may cost at most this much
MAX_PACED_INTERVAL_S = 2.0  # however costly, a live pane reloads at least this often


class StoreLoader(QObject):
    """Runs ``query`` on the store thread when asked, coalescing requests.

    Args:
        store: the engine's store thread.
        query: a synchronous store function taking no arguments.
        min_interval_ms: least time between the starts of two runs (more when runs are
            costly, see :data:`MAX_SHARE`).
        shown_in: the widget showing the results; while it is hidden, requests only
            mark the data stale and one run happens when it is shown again.

    Signals:
        loaded(object): the query's result (on the GUI thread).
        failed(str): the query raised; the text says what failed.
    """

    loaded = Signal(object)
    failed = Signal(str)
    _delivered = Signal(object)

    def __init__(self, store: StoreThread, query: Callable[[], Any], *,
                 min_interval_ms: int = 250, parent: QObject | None = None,
                 shown_in: QWidget | None = None) -> None:
        super().__init__(parent)
        self._shown_in = shown_in
        self._stale = False
        if shown_in is not None:
            shown_in.installEventFilter(self)
        self._store = store
        self._query = query
        self._min_interval_s = min_interval_ms / 1000
        self._interval_s = self._min_interval_s
        self._query_s = 0.0  # how long the last query ran on the store thread
        self._inflight: Future[Any] | None = None
        self._again = False
        self._last_start = -1e9  # long ago: the first request runs at once
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._delivered.connect(self._on_delivered, Qt.ConnectionType.QueuedConnection)
        self._closed = False
        self.runs = 0  # how many queries actually ran (tests check the coalescing)

    def request(self) -> None:
        """Ask for fresh data; cheap to call on every event."""
        if self._shown_in is not None and not self._shown_in.isVisible():
            self._stale = True
            return
        self._stale = False
        if self._inflight is not None:
            self._again = True
            return
        if self._timer.isActive():
            return
        wait = self._last_start + self._interval_s - time.monotonic()
        self._timer.start(max(0, int(wait * 1000)))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._shown_in and event.type() == QEvent.Type.Show and self._stale:
            self.request()
        return False

    def close(self) -> None:
        """Stop for good (shutdown): no new runs, late results are dropped."""
        self._closed = True
        self._timer.stop()

    def busy(self) -> bool:
        """True while a query is queued or running."""
        return self._inflight is not None or self._timer.isActive()

    def _on_timer_timeout(self) -> None:
        if self._closed:
            return
        self._last_start = time.monotonic()
        self.runs += 1
        future = self._store.submit(self._timed_query)
        self._inflight = future
        future.add_done_callback(self._deliver)

    def interval_ms(self) -> int:
        """The least time between two runs now (paced by their cost)."""
        return int(self._interval_s * 1000)

    def _timed_query(self) -> Any:
        # Runs on the store thread.
        started = time.perf_counter()
        try:
            return self._query()
        finally:
            self._query_s = time.perf_counter() - started

    def _deliver(self, future: Future[Any]) -> None:
        # Runs on the store thread: only hand over to the GUI thread.
        with contextlib.suppress(RuntimeError):  # the loader was deleted meanwhile
            self._delivered.emit(future)

    def _on_delivered(self, future: Future[Any]) -> None:
        self._inflight = None
        if self._closed:
            return
        error = future.exception()
        if error is not None:
            message = getattr(error, "message", None) or str(error) or type(error).__name__
            log.warning("store query %s failed: %s", getattr(self._query, "__name__", "?"),
                        message)
            self.failed.emit(message)
        else:
            started = time.perf_counter()
            self.loaded.emit(future.result())
            cost = self._query_s + time.perf_counter() - started
            self._interval_s = max(self._min_interval_s,
                                   min(MAX_PACED_INTERVAL_S, cost / MAX_SHARE))
        if self._again:
            self._again = False
            self.request()


def timer(parent: QObject, interval_ms: int, slot: Callable[[], Any], *,
          single_shot: bool = False) -> QTimer:
    """A (not yet started) timer owned by ``parent`` that calls ``slot``."""
    clock = QTimer(parent)
    clock.setInterval(interval_ms)
    clock.setSingleShot(single_shot)
    clock.timeout.connect(slot)
    return clock
