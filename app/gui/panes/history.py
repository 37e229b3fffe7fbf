"""The History pane: every execution, filtered, with stats, detail, retry, clone, export.

The table is the windowed :class:`ExecutionHistoryModel` (true count, pages
fetched on demand from the store thread), so a million rows scroll like a
hundred. Engine activity refreshes it at most once a second; the stats strip
(counts per status for the filter) at most every few seconds, because a
GROUP BY over millions of rows is not free for the store thread the engine
shares.
"""

from __future__ import annotations

import getpass
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from PySide6.QtCore import QEvent, QItemSelection, Qt, QTimer
from PySide6.QtGui import QAction, QShowEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app.core.history import ExecutionFilter
from app.core.records import ExecutionRecord, TaskRecord
from app.core.taskspec import TaskSpec
from app.gui.bridge import EngineBridge
from app.gui.history_model import ExecutionHistoryModel, configure_view
from app.gui.panes.history_detail import HistoryDetail
from app.gui.panes.history_export import CsvExporter
from app.gui.panes.history_filters import HistoryFilterBar, StatsStrip
from app.gui.panes.history_source import (
    FutureDelivery,
    StorePageSource,
    live_interval_ms,
    status_counts,
)
from app.gui.panes.wiring import make_action
from app.store import executions, queues

log = logging.getLogger(__name__)

REFRESH_MS = 1000  # live refresh of the table: at most once a second...
STATS_EVERY_MS = 5000  # ...and of the stats strip every five seconds...
# (both slower when the queries are costly: see history_source.live_interval_ms; and not
# at all while the pane is hidden, e.g. behind the Queue tab: once when shown instead)
STATS_DELAY_MS = 300  # after a new count, before its stats are asked for
SYSTEM_MODULE = "system"  # maintenance jobs record themselves here; they are not tasks


class HistoryPane(QWidget):
    """Executions with filters, a stats strip, a detail pane and actions."""

    def __init__(self, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.engine = bridge.engine
        self.model: ExecutionHistoryModel | None = None
        self.source = StorePageSource(self.engine.store.submit_read)
        self.exporter = CsvExporter(self.engine.store.submit_read, self)
        self.stats: dict[str, Any] = {}
        self._delivery = FutureDelivery(self)
        self._stats_future: Future[Any] | None = None
        self._detail_id: int | None = None
        self._stats_after_page = False  # the first page must not queue behind the stats
        self._refresh_began: float | None = None
        self._refresh_missed = self._stats_missed = False  # while hidden
        self._dialogs: list[QWidget] = []
        self.clone_dialog: QWidget | None = None  # the last one opened (tests look at it)
        self._setup_ui()
        self._connect()

    # -- public API ------------------------------------------------------------------------
    def engine_started(self) -> None:
        """Create the model over the store and load the first page and the stats."""
        self.model = ExecutionHistoryModel(self.source, self,
                                           initial_filter=self.filters.applied_filter())
        self.table.setModel(self.model)
        configure_view(self.table)
        for column, width in ((ExecutionHistoryModel.TASK_NAME, 130),
                              (ExecutionHistoryModel.MODULE, 80),
                              (ExecutionHistoryModel.DEVICE, 140),
                              (ExecutionHistoryModel.CREATED_BY, 90)):
            self.table.setColumnWidth(column, width)
        self.table.horizontalHeader().setSortIndicator(ExecutionHistoryModel.CREATED,
                                                       Qt.SortOrder.DescendingOrder)
        self.model.count_changed.connect(self._on_model_count_changed)
        self.model.page_loaded.connect(self._on_model_page_loaded)
        self.model.load_failed.connect(self.bridge.error)
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection_changed)
        self._stats_after_page = True
        QTimer.singleShot(0, self._load_choices)

    def set_filter(self, f: ExecutionFilter) -> None:
        """Show executions matching ``f`` (the filter bar calls this)."""
        if self.model is None:
            return
        self.model.set_filter(f)
        self.detail.show_record(None)
        self._update_actions()
        self._stats_after_page = True

    def refresh(self) -> None:
        """Count again and reload what is on screen (new executions appear on top)."""
        if self.model is not None:
            self._refresh_began = time.perf_counter()
            self.model.refresh()
            self._refresh_detail()

    def selected_record(self) -> ExecutionRecord | None:
        if self.model is None:
            return None
        rows = self.table.selectionModel().selectedRows()
        return self.model.record(rows[0].row()) if rows else None

    def retry_selected(self) -> Any:
        """Enqueue a fresh copy of the selected execution's task."""
        record = self.selected_record()
        if record is None:
            return None
        return self.bridge.run(self.engine.retry(record.task_id, actor=getpass.getuser()),
                               what=f"retry {record.task_name}")

    def clone_selected(self) -> Any:
        """Open the New task dialog filled in from the selected execution's task."""
        record = self.selected_record()
        if record is None:
            return None
        return self.bridge.run(self._open_clone(record.task_id), what="clone and edit")

    def export_csv(self, path: str) -> None:
        """Export the current filter to ``path`` (the Export dialog calls this)."""
        if self.model is None or self.exporter.running():
            return
        self.export_progress.setRange(0, 0)
        self.export_progress.show()
        self.export_cancel.show()
        self.export_label.setText("Exporting\u2026")
        self.export_action.setEnabled(False)
        self.exporter.start(self.model.current_filter(), path)

    def open_export_dialog(self) -> QFileDialog:
        dialog = QFileDialog(self, "Export executions to CSV", "executions.csv",
                             "CSV files (*.csv)")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("csv")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(self.export_csv)
        dialog.open()
        return dialog

    # -- set-up ------------------------------------------------------------------------------
    def _setup_ui(self) -> None:
        self.filters = HistoryFilterBar(self)
        self.stats_strip = StatsStrip(self)
        self.count_label = self.stats_strip.count_label
        self._chips = self.stats_strip.chips

        self.toolbar = QToolBar("History actions", self)
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.retry_action = self._action("Retry", "Ctrl+R", self.retry_selected,
                                         "Enqueue the selected task again (a new task)")
        self.clone_action = self._action("Clone and edit\u2026", "Ctrl+E", self.clone_selected,
                                         "Open the New task dialog filled in from this task")
        self.export_action = self._action("Export CSV\u2026", "Ctrl+Shift+E",
                                          self.open_export_dialog,
                                          "Save the executions of the current filter as CSV")
        self.refresh_action = self._action("Refresh", "F5", self.refresh,
                                           "Count and load again")
        self._action("Search", "Ctrl+F", self.filters.search.setFocus, "Focus the search box",
                     toolbar=False)
        self.export_progress = QProgressBar()
        self.export_progress.setMaximumWidth(200)
        self.export_progress.hide()
        self.export_cancel = QPushButton("Cancel export")
        self.export_cancel.hide()
        self.export_label = QLabel()
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 6, 0)
        bar.addWidget(self.toolbar)
        bar.addStretch(1)
        bar.addWidget(self.export_label)
        bar.addWidget(self.export_progress)
        bar.addWidget(self.export_cancel)

        self.table = QTableView(self)
        self.table.setSortingEnabled(False)  # the store orders; only Created flips
        header = self.table.horizontalHeader()
        header.setSortIndicatorShown(True)
        header.setSectionsClickable(True)
        header.setToolTip("Click Created to show oldest or newest first")
        self.detail = HistoryDetail(self.engine.paths.artifacts, self)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.table)
        splitter.addWidget(self.detail)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.filters)
        layout.addWidget(self.stats_strip)
        layout.addLayout(bar)
        layout.addWidget(splitter, 1)
        self._update_actions()

    def _action(self, text: str, keys: str, slot: Callable[[], Any], tip: str, *,
                toolbar: bool = True) -> QAction:
        action = make_action(self, text, tip, slot, keys)
        if toolbar:
            self.toolbar.addAction(action)
        return action

    def _connect(self) -> None:
        self.filters.filter_changed.connect(self.set_filter)
        self.stats_strip.status_clicked.connect(lambda s: self.filters.set_statuses([s]))
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_MS)
        self._refresh_timer.timeout.connect(self._on_refresh_timer_timeout)
        self._stats_timer = QTimer(self)
        self._stats_timer.setSingleShot(True)
        self._stats_timer.setInterval(STATS_EVERY_MS)
        self._stats_timer.timeout.connect(self._on_stats_timer_timeout)
        self.bridge.executions_finished.connect(self._on_engine_activity)
        self.bridge.tasks_changed.connect(self._on_engine_activity)
        self.table.horizontalHeader().sectionClicked.connect(self._on_header_section_clicked)
        self.exporter.progressed.connect(self._on_exporter_progressed)
        self.exporter.finished.connect(self._on_exporter_finished)
        self.exporter.failed.connect(self._on_exporter_failed)
        self.export_cancel.clicked.connect(self.exporter.cancel)

    # -- slots ---------------------------------------------------------------------------------
    def _on_engine_activity(self, _events: list[Any]) -> None:
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()  # coalesced: one refresh per second at most
        if not self._stats_timer.isActive():
            self._stats_timer.start()

    def _on_refresh_timer_timeout(self) -> None:
        if not self.isVisible():
            self._refresh_missed = True  # nobody sees it: refresh once when shown
            return
        self.refresh()

    def _on_stats_timer_timeout(self) -> None:
        if not self.isVisible():
            self._stats_missed = True
            return
        self._request_stats()

    def _on_model_count_changed(self, total: int) -> None:
        if self._refresh_began is not None:  # a live refresh: pace the next one by its cost
            cost = time.perf_counter() - self._refresh_began
            self._refresh_timer.setInterval(live_interval_ms(cost, REFRESH_MS))
            self._refresh_began = None
        if self._stats_after_page:
            # The stats (a GROUP BY over every matching row) wait a moment, so that
            # the pages an operator scrolls to right after the count do not queue
            # behind them on the store thread; a hidden pane gets them all the same.
            QTimer.singleShot(0 if total == 0 else STATS_DELAY_MS, self._on_model_page_loaded)
        shown = f"{total:,} execution{'s' if total != 1 else ''}"
        self.count_label.setText(shown if self.filters.applied_filter().is_empty
                                 else f"{shown} match")

    def _on_model_page_loaded(self, _page: int = 0) -> None:
        if self.model is not None and self.model.is_counting():
            return  # the first page came before the count: the stats follow the count
        if self._stats_after_page:
            self._stats_after_page = False
            self._request_stats()

    def _on_table_selection_changed(self, _selected: QItemSelection,
                                    _deselected: QItemSelection) -> None:
        record = self.selected_record()
        self._detail_id = record.id if record else None
        self.detail.show_record(record)
        self._update_actions()
        self._refresh_detail()

    def _on_header_section_clicked(self, section: int) -> None:
        header = self.table.horizontalHeader()
        if section == ExecutionHistoryModel.CREATED and self.model is not None:
            self.source.oldest_first = not self.source.oldest_first
            self.model.set_filter(self.model.current_filter())
            self.detail.show_record(None)
        order = (Qt.SortOrder.AscendingOrder if self.source.oldest_first
                 else Qt.SortOrder.DescendingOrder)
        header.setSortIndicator(ExecutionHistoryModel.CREATED, order)

    def _on_exporter_progressed(self, done: int, total: int) -> None:
        self.export_progress.setRange(0, max(1, total))
        self.export_progress.setValue(done)
        self.export_label.setText(f"Exporting {done:,} of {total:,}")

    def _on_exporter_finished(self, path: str, rows: int) -> None:
        self._export_done(f"Exported {rows:,} rows to {path}")

    def _on_exporter_failed(self, reason: str) -> None:
        self._export_done("Export cancelled" if reason == "cancelled" else "Export failed")
        if reason != "cancelled":
            self.bridge.error.emit(f"export CSV: {reason}")

    # -- internals ------------------------------------------------------------------------------
    def _export_done(self, message: str) -> None:
        self.export_progress.hide()
        self.export_cancel.hide()
        self.export_label.setText(message)
        self.export_action.setEnabled(True)

    def _update_actions(self) -> None:
        record = self.selected_record()
        is_task = record is not None and record.module != SYSTEM_MODULE
        self.retry_action.setEnabled(is_task and record is not None
                                     and record.status.is_terminal)
        self.clone_action.setEnabled(is_task)

    def _refresh_detail(self) -> None:
        """Fetch the selected execution afresh (it may have finished since its page loaded)."""
        ident = self._detail_id
        if ident is None:
            return
        future = self.engine.store.submit_read(executions.get_execution, ident)
        self._delivery.when_done(future, lambda f: self._on_fresh_record(ident, f))

    def _on_fresh_record(self, ident: int, future: Future[Any]) -> None:
        if ident != self._detail_id or future.exception() is not None:
            return
        self.detail.show_record(future.result())
        self._update_actions()

    def _request_stats(self) -> None:
        if self.model is None:
            return
        if self._stats_future is not None and not self._stats_future.done():
            self._stats_future.cancel()  # a newer filter supersedes it
        wanted = self.model.current_filter()
        future = self.engine.store.submit_read(status_counts, wanted)
        self._stats_future = future
        self._delivery.when_done(future, lambda f: self._on_stats(wanted, f))

    def _on_stats(self, wanted: ExecutionFilter, future: Future[Any]) -> None:
        if self.model is None or wanted != self.model.current_filter():
            return
        if future.exception() is not None:
            self.bridge.error.emit(f"history stats: {future.exception()}")
            return
        self.stats = future.result()
        self._stats_timer.setInterval(live_interval_ms(self.stats["seconds"], STATS_EVERY_MS))
        self.stats_strip.set_stats(self.stats)

    def _load_choices(self) -> None:
        future = self.engine.store.submit_read(queues.list_queues)

        def offer(done: Future[Any]) -> None:
            names = [q.name for q in done.result()] if done.exception() is None else []
            self.filters.set_choices(
                modules=names + [SYSTEM_MODULE], task_names=self.engine.registry.names(),
                devices=[v.serial for v in self.engine.device_views()])

        self._delivery.when_done(future, offer)

    # -- Qt overrides -------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        missed = self._refresh_missed
        if missed:
            self.refresh()
        if missed or self._stats_missed:  # counts moved on: so did the stats
            self._request_stats()
        self._refresh_missed = self._stats_missed = False

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self.detail.show_record(self.detail.record())  # status colours follow the theme

    async def _open_clone(self, task_id: str) -> None:
        from app.gui.dialogs.new_task import NewTaskDialog

        task: TaskRecord = await self.engine.get_task(task_id)
        spec = TaskSpec(kind=task.kind, payload=task.payload, queue=task.queue,
                        priority=task.priority, target=task.target,
                        max_attempts=task.max_attempts, timeout_s=task.timeout_s,
                        dedupe_key=task.dedupe_key, source="gui",
                        created_by=getpass.getuser())
        dialog = NewTaskDialog(self.bridge, self, initial=spec)
        self._dialogs.append(dialog)
        dialog.finished.connect(lambda _r, d=dialog: self._dialogs.remove(d)
                                if d in self._dialogs else None)
        dialog.open()
        self.clone_dialog = dialog
