"""A windowed table model over the execution history (up to millions of rows).

``rowCount()`` is the true total, from one COUNT per filter change; ``data()``
serves rows from a small LRU cache of pages (:class:`PageCache`). A row whose
page is not cached shows a placeholder and its page is requested once from the
*page source*, whose functions return ``concurrent.futures.Future`` objects
(the engine runs store queries on its own thread). Results cross back to the
GUI thread through a queued signal; the model is never touched from another
thread. Stale answers (for an older filter or before a refresh) are dropped.

The first page is asked for before the COUNT (which over a million rows takes
longer than the page): its rows are shown at once, and the rest of the rows are
added below them when the count arrives.

Views over this model must use fixed row heights (see :func:`configure_view`):
a view that measures rows would ask for every row of a million.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from concurrent.futures import Future
from datetime import datetime
from typing import Any, Protocol

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from app.core.records import ExecutionRecord
from app.gui.pagecache import PageCache
from app.gui.theme import status_colors

log = logging.getLogger(__name__)

ModelIndex = QModelIndex | QPersistentModelIndex

PLACEHOLDER = "\u2026"  # shown in the ID column while a row's page loads
NOT_SET = "\u2014"  # em dash: no value (not started, no duration)


class PageSource(Protocol):
    """Where pages come from; each call returns at once with a Future.

    ``filter`` is whatever the engine filters executions by (its
    ``ExecutionFilter``); the model only passes it through. Rows are ordered
    newest first (``created_at`` descending, then ``id`` descending).
    """

    def count(self, filter: Any) -> Future[int]: ...  # noqa: A002

    def window(
        self, filter: Any, offset: int, limit: int  # noqa: A002
    ) -> Future[list[ExecutionRecord]]: ...


class ExecutionHistoryModel(QAbstractTableModel):
    """Executions, newest first, loaded a page at a time.

    Signals:
        count_changed(int): the total after each COUNT answer.
        page_loaded(int): a page arrived and its rows were reported changed.
        load_failed(str): the source raised; the message says what failed.
    """

    ID, TASK_NAME, MODULE, STATUS, DEVICE, CREATED_BY, CREATED, STARTED, DURATION, \
        ATTEMPT, PROGRESS, ERROR = range(12)
    HEADERS = ("ID", "Task", "Module", "Status", "Device / agent", "Created by", "Created",
               "Started", "Duration", "Attempt", "Progress", "Error")
    RECORD_ROLE = Qt.ItemDataRole.UserRole + 1  # the ExecutionRecord, or None while loading

    count_changed = Signal(int)
    page_loaded = Signal(int)
    load_failed = Signal(str)
    # Private: carries (kind, epoch, page, future) from the source's thread.
    _delivered = Signal(object)

    def __init__(
        self,
        source: PageSource,
        parent: QObject | None = None,
        *,
        page_size: int = 200,
        max_pages: int = 20,
        max_inflight: int = 4,
        initial_filter: Any = None,
    ) -> None:
        super().__init__(parent)
        self._source = source
        self._filter = initial_filter
        self._cache: PageCache[ExecutionRecord] = PageCache(page_size, max_pages)
        self._stale: PageCache[ExecutionRecord] | None = None
        self._stale_shift = 0
        self._total = 0
        self._epoch = 0
        self._max_inflight = max_inflight
        self._inflight: OrderedDict[int, Future[list[ExecutionRecord]]] = OrderedDict()
        self._failed: set[int] = set()
        self._counting = False
        self._head_only = False  # rows shown are the first page, before the count
        self._colours: tuple[int, dict[str, QColor]] | None = None
        self._delivered.connect(self._on_delivered, Qt.ConnectionType.QueuedConnection)
        self._request_page(0)
        self._request_count()

    # -- public API -----------------------------------------------------------------

    def set_filter(self, filter: Any) -> None:  # noqa: A002
        """Show executions matching ``filter``: drops everything, counts again."""
        self._epoch += 1
        self._filter = filter
        self._cancel_inflight()
        self.beginResetModel()
        self._cache.clear()
        self._stale = None
        self._total = 0
        self._head_only = False
        self.endResetModel()
        self._request_page(0)
        self._request_count()

    def current_filter(self) -> Any:
        return self._filter

    def refresh(self) -> None:
        """Count again and reload pages; new rows appear at the top.

        Until fresh pages arrive, rows keep showing what was cached, moved down
        by the number of new rows, so a live view does not flash placeholders.
        """
        self._epoch += 1
        self._cancel_inflight()
        self._stale = self._cache
        self._stale_shift = 0
        self._cache = PageCache(self._stale.page_size, self._stale.max_pages)
        self._request_count()

    def record(self, row: int) -> ExecutionRecord | None:
        """The execution shown in ``row``, if loaded (never requests a page)."""
        if not 0 <= row < self._total:
            return None
        found = self._cache.get(row)
        if found is None and self._stale is not None and row >= self._stale_shift:
            found = self._stale.get(row - self._stale_shift)
        return found

    def is_loaded(self, row: int) -> bool:
        """True when ``row`` comes from a page loaded since the last refresh."""
        return self._cache.get(row) is not None

    def total(self) -> int:
        return self._total

    def cached_pages(self) -> list[int]:
        """Pages held now, least recently used first."""
        return self._cache.pages()

    def is_counting(self) -> bool:
        return self._counting

    # -- Qt model interface ------------------------------------------------------------

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._total

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section] if 0 <= section < len(self.HEADERS) else None
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < self._total:
            return None
        row, column = index.row(), index.column()
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if column in (self.ID, self.DURATION, self.ATTEMPT, self.PROGRESS):
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ForegroundRole,
                        Qt.ItemDataRole.ToolTipRole, self.RECORD_ROLE):
            return None
        if not self._cache.has_page(self._cache.page_of(row)):
            self._request_page(self._cache.page_of(row))
        record = self.record(row)
        if role == self.RECORD_ROLE:
            return record
        if record is None:
            if role == Qt.ItemDataRole.DisplayRole and column == self.ID:
                return PLACEHOLDER
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return _cell_text(record, column)
        if role == Qt.ItemDataRole.ForegroundRole and column == self.STATUS:
            return self._status_colour(record.status.value)
        if role == Qt.ItemDataRole.ToolTipRole and column == self.ERROR and record.error:
            return record.error
        return None

    # -- loading ----------------------------------------------------------------------------

    def _request_count(self) -> None:
        self._counting = True
        epoch = self._epoch
        future = self._source.count(self._filter)
        future.add_done_callback(lambda f: self._deliver("count", epoch, -1, f))

    def _request_page(self, page: int) -> None:
        if page in self._inflight or page in self._failed:
            return  # asked once already (de-duplicated)
        while len(self._inflight) >= self._max_inflight:
            # The operator scrolled past pages still queued: forget the oldest.
            oldest, queued = self._inflight.popitem(last=False)
            queued.cancel()
        epoch = self._epoch
        size = self._cache.page_size
        future = self._source.window(self._filter, page * size, size)
        self._inflight[page] = future
        future.add_done_callback(lambda f: self._deliver("page", epoch, page, f))

    def _deliver(self, kind: str, epoch: int, page: int, future: Future[Any]) -> None:
        # Runs on the source's thread (or inline if the future was already done):
        # only hand over to the GUI thread here.
        with contextlib.suppress(RuntimeError):  # the model was deleted meanwhile
            self._delivered.emit((kind, epoch, page, future))

    def _on_delivered(self, item: tuple[str, int, int, Future[Any]]) -> None:
        kind, epoch, page, future = item
        if epoch != self._epoch or future.cancelled():
            return
        error = future.exception()
        if kind == "page" and self._inflight.get(page) is future:
            del self._inflight[page]
        if error is not None:
            log.warning("history %s query failed: %s", kind, error)
            if kind == "page":
                self._failed.add(page)  # not retried until the next refresh
            else:
                self._counting = False
            self.load_failed.emit(f"Could not load the history: {error}")
            return
        if kind == "count":
            self._apply_count(int(future.result()))
        else:
            self._apply_page(page, list(future.result()))

    def _apply_count(self, total: int) -> None:
        self._counting = False
        self._failed.clear()
        old = self._total
        if self._head_only:
            # The first page is on show: the rest of the rows go below it.
            self._head_only = False
            if total > old:
                self.beginInsertRows(QModelIndex(), old, total - 1)
                self._total = total
                self.endInsertRows()
                old = total
        if total > old:
            self.beginInsertRows(QModelIndex(), 0, total - old - 1)
            self._total = total
            # New executions are the newest: they take the top rows.
            self._stale_shift = total - old if self._stale is not None else 0
            self.endInsertRows()
        elif total < old:
            self.beginRemoveRows(QModelIndex(), total, old - 1)
            self._total = total
            self.endRemoveRows()
        if self._total:
            last = self.index(self._total - 1, self.columnCount() - 1)
            self.dataChanged.emit(self.index(0, 0), last)
        self.count_changed.emit(total)

    def _apply_page(self, page: int, records: list[ExecutionRecord]) -> None:
        self._cache.put(page, records)
        if page == 0 and self._counting and self._total == 0 and records:
            # The first page beat the count: show its rows now.
            self._head_only = True
            self.beginInsertRows(QModelIndex(), 0, len(records) - 1)
            self._total = len(records)
            self.endInsertRows()
        first = page * self._cache.page_size
        last = min(self._total, first + self._cache.page_size) - 1
        if last >= first:
            self.dataChanged.emit(self.index(first, 0), self.index(last, self.columnCount() - 1))
        self.page_loaded.emit(page)

    def _cancel_inflight(self) -> None:
        for future in self._inflight.values():
            future.cancel()
        self._inflight.clear()
        self._failed.clear()

    def _status_colour(self, status: str) -> QColor | None:
        palette = QGuiApplication.palette()
        if self._colours is None or self._colours[0] != palette.cacheKey():
            self._colours = (palette.cacheKey(), status_colors(palette))
        return self._colours[1].get(status)


def configure_view(view: QTableView) -> None:
    """Set a table up for a windowed model: fixed row heights, no row header.

    With fixed heights the view computes positions from the row count alone, so
    scrolling to the end of a million rows touches only the visible ones.
    """
    rows = view.verticalHeader()
    rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    rows.setDefaultSectionSize(view.fontMetrics().height() + 6)
    rows.hide()
    view.setWordWrap(False)
    view.setAlternatingRowColors(True)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    columns = view.horizontalHeader()
    columns.setStretchLastSection(True)
    columns.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    widths = {ExecutionHistoryModel.ID: 80, ExecutionHistoryModel.TASK_NAME: 160,
              ExecutionHistoryModel.STATUS: 90, ExecutionHistoryModel.CREATED: 150,
              ExecutionHistoryModel.STARTED: 150, ExecutionHistoryModel.DURATION: 80,
              ExecutionHistoryModel.ATTEMPT: 60}
    for column, width in widths.items():
        view.setColumnWidth(column, width)


def format_duration(seconds: float | None) -> str:
    """Short human duration: 850 ms, 12.3 s, 4m 05s, 2h 03m."""
    if seconds is None:
        return NOT_SET
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_time(ts: float | None) -> str:
    """Local date and time to the second (what an operator compares with a clock)."""
    if ts is None:
        return NOT_SET
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _progress_text(record: ExecutionRecord) -> str:
    meta = record.metadata or {}
    percent = meta.get("progress_percent")
    step = meta.get("progress_step") or ""
    parts = [f"{percent}%" if isinstance(percent, int | float) else "", str(step)]
    return " ".join(p for p in parts if p)


def _cell_text(record: ExecutionRecord, column: int) -> str:
    model = ExecutionHistoryModel
    if column == model.ID:
        return str(record.id)
    if column == model.TASK_NAME:
        return record.task_name
    if column == model.MODULE:
        return record.module
    if column == model.STATUS:
        return record.status.value
    if column == model.DEVICE:
        return record.device_serial or record.agent_uuid or ""
    if column == model.CREATED_BY:
        return record.created_by
    if column == model.CREATED:
        return format_time(record.created_at)
    if column == model.STARTED:
        return format_time(record.started_at)
    if column == model.DURATION:
        return format_duration(record.duration)
    if column == model.ATTEMPT:
        return str(record.attempt)
    if column == model.PROGRESS:
        return _progress_text(record)
    if column == model.ERROR:
        return (record.error or "").splitlines()[0] if record.error else ""
    return ""
