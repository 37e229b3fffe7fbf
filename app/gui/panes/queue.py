"""The Queue pane: waiting and running tasks, and what an operator does with them.

Rows are reloaded from the store on task and queue events through a
:class:`StoreLoader` (a burst of a thousand events costs a few reloads) and
merged in place; progress events patch cells without a reload. Choosing a
queue in the queue box filters the table to it and enables Pause/Resume and
its concurrency limit.
"""

from __future__ import annotations

import getpass
import logging
from functools import partial

from PySide6.QtCore import QItemSelection, QPoint, Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QTableView,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.enums import Priority, TaskState
from app.core.records import TaskRecord
from app.engine.bus import ExecutionProgress
from app.gui.bridge import EngineBridge
from app.gui.livelabel import LiveLabel
from app.gui.panes.cell_delegate import CellDelegate
from app.gui.panes.loader import StoreLoader, timer
from app.gui.panes.queue_model import (
    ACTIVE_STATES,
    RECORD_ROLE,
    Col,
    QueueSnapshot,
    QueueTaskModel,
    load_snapshot,
)
from app.gui.panes.wiring import make_action, popup_menu, selected_records, set_up_rows
from app.store.queues import MAX_CONCURRENCY, QueueRecord

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 5000
RELOAD_MIN_INTERVAL_MS = 300  # at most ~3 reloads a second, however many events arrive
POLL_INTERVAL_MS = 3000  # also notice tasks written by the CLI or another workstation
CONCURRENCY_APPLY_DELAY_MS = 600  # let the operator finish clicking the arrows
ALL = "__all__"
EMPTY_TEXT = "No queued work \u2014 New task\u2026 or Bulk enqueue\u2026"
NO_MATCH_TEXT = "No task matches the filters."


class QueuePane(QWidget):
    """Pending, claimed and running tasks with cancel, priority and queue controls."""

    def __init__(self, bridge: EngineBridge, parent: QWidget | None = None, *,
                 limit: int = DEFAULT_LIMIT) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.engine = bridge.engine
        self.limit = limit
        self.queues: dict[str, QueueRecord] = {}
        self.total = 0
        self._actor = getpass.getuser()
        self.model = QueueTaskModel(self)
        self._loader: StoreLoader | None = None
        self._setup_ui()
        self._tick = timer(self, 1000, self.model.tick)
        self._poll = timer(self, POLL_INTERVAL_MS, self.reload)
        self._concurrency_timer = timer(self, CONCURRENCY_APPLY_DELAY_MS,
                                        self._apply_concurrency, single_shot=True)
        bridge.tasks_changed.connect(self._on_bridge_tasks_changed)
        bridge.queues_changed.connect(self.reload)
        bridge.progress.connect(self._on_bridge_progress)

    # -- public API -------------------------------------------------------------------
    def engine_started(self) -> None:
        self._loader = StoreLoader(self.engine.store, partial(load_snapshot, self.limit),
                                   min_interval_ms=RELOAD_MIN_INTERVAL_MS, parent=self,
                                   shown_in=self)
        self._loader.loaded.connect(self._on_loader_loaded)
        self._loader.failed.connect(self._on_loader_failed)
        for name in self.engine.registry.names():
            self.kind_box.addItem(name, name)
        self._tick.start()
        self._poll.start()
        self.reload()

    def reload(self) -> None:
        """Ask for fresh rows (coalesced; a hidden pane reloads when shown instead)."""
        if self._loader is not None:
            self._loader.request()

    def selected_tasks(self) -> list[TaskRecord]:
        return selected_records(self.view, RECORD_ROLE)

    def current_queue(self) -> str | None:
        value = self.queue_box.currentData()
        return None if value in (None, ALL) else str(value)

    def new_task(self) -> None:
        from app.gui.dialogs.new_task import NewTaskDialog

        dialog = NewTaskDialog(self.bridge, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if self.current_queue():
            dialog.set_queue(self.current_queue() or "default")
        dialog.submitted.connect(lambda _record: self.reload())
        dialog.open()

    def bulk_enqueue(self) -> None:
        from app.gui.dialogs.bulk_enqueue import BulkEnqueueDialog

        dialog = BulkEnqueueDialog(self.bridge, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.enqueued.connect(lambda _records: self.reload())
        dialog.open()

    def cancel_selected(self) -> None:
        chosen = self.selected_tasks()
        if not chosen:
            return
        if len(chosen) == 1:
            self._cancel(chosen)
            return
        running = sum(t.state is TaskState.RUNNING for t in chosen)
        box = QMessageBox(QMessageBox.Icon.Question, "Cancel tasks",
                          f"Cancel {len(chosen)} tasks?", parent=self)
        box.setInformativeText(
            f"{running} of them are running and will be stopped on their phones."
            if running else "None of them has started yet.")
        confirm = box.addButton(f"Cancel {len(chosen)} tasks",
                                QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Keep them", QMessageBox.ButtonRole.RejectRole)
        box.finished.connect(
            lambda _code: self._cancel(chosen) if box.clickedButton() is confirm else None)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self._confirm_box = box

    def set_priority_selected(self, priority: Priority) -> None:
        for task in self._waiting(self.selected_tasks()):
            self.bridge.run(self.engine.set_priority(task.uid, priority),
                            what=f"priority of {task.uid[:8]}")

    # -- building -----------------------------------------------------------------------
    def _setup_ui(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self._build_toolbar())
        layout.addLayout(self._build_filters())
        self.stack = QStackedWidget(self)
        self.view = self._build_view()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self._build_empty_page())
        layout.addWidget(self.stack, 1)
        self._update_actions()
        self._update_queue_controls()
        self._update_empty_state()

    def _build_toolbar(self) -> QToolBar:
        bar = QToolBar(self)
        self.new_action = make_action(self, "New task\u2026", "Queue one task", self.new_task,
                                      "Ctrl+N")
        self.bulk_action = make_action(self, "Bulk enqueue\u2026",
                                       "Queue every task of a JSON or CSV file",
                                       self.bulk_enqueue, "Ctrl+Shift+N")
        self.cancel_action = make_action(self, "Cancel", "Cancel the selected tasks; running "
                                         "ones are stopped on their phones", self.cancel_selected,
                                         QKeySequence(QKeySequence.StandardKey.Delete))
        self.priority_menu = QMenu("Change priority", self)
        self.priority_actions: dict[Priority, QAction] = {}
        for priority in reversed(Priority):
            action = self.priority_menu.addAction(priority.label.capitalize())
            action.triggered.connect(partial(self.set_priority_selected, priority))
            self.priority_actions[priority] = action
        self.priority_menu.setToolTip("Re-prioritise the selected tasks that have not started")
        bar.addAction(self.new_action)
        bar.addAction(self.bulk_action)
        bar.addSeparator()
        bar.addAction(self.cancel_action)
        priority_button = QToolButton(bar)
        priority_button.setText("Priority")
        priority_button.setToolTip(self.priority_menu.toolTip())
        priority_button.setMenu(self.priority_menu)
        priority_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.priority_button = priority_button
        bar.addWidget(priority_button)
        bar.addSeparator()
        self.pause_button = QPushButton("Pause queue", bar)
        self.pause_button.setToolTip("Stop claiming tasks from the chosen queue (running "
                                     "tasks finish)")
        self.pause_button.clicked.connect(self._on_pause_button_clicked)
        bar.addWidget(self.pause_button)
        bar.addWidget(QLabel(" Concurrency ", bar))
        self.concurrency = QSpinBox(bar)
        self.concurrency.setRange(0, MAX_CONCURRENCY)
        self.concurrency.setSpecialValueText("no limit")
        self.concurrency.setToolTip("Most tasks of the chosen queue claimed or running at "
                                    "once (0 = no limit)")
        self.concurrency.valueChanged.connect(self._on_concurrency_value_changed)
        bar.addWidget(self.concurrency)
        self.queue_counts = LiveLabel(bar)
        bar.addWidget(self.queue_counts)
        self.queue_counts.setContentsMargins(8, 0, 0, 0)  # after: adding a fixed-size
        # widget to a tool bar resets its margins
        return bar

    def _build_filters(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.queue_box = QComboBox(self)
        self.queue_box.addItem("All queues", ALL)
        self.queue_box.setToolTip("Show one queue (and pause it or limit it)")
        self.queue_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.kind_box = QComboBox(self)
        self.kind_box.addItem("All kinds", ALL)
        self.state_box = QComboBox(self)
        self.state_box.addItem("All states", ALL)
        for state in ACTIVE_STATES:
            self.state_box.addItem(state.value, state.value)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Filter: id, kind, target, device, payload, error")
        self.search.setClearButtonEnabled(True)
        for box in (self.queue_box, self.kind_box, self.state_box):
            box.currentIndexChanged.connect(self._on_filters_changed)
        self.search.textChanged.connect(self._on_filters_changed)
        self.summary = LiveLabel(self)
        row.addWidget(QLabel("Queue", self))
        row.addWidget(self.queue_box)
        row.addWidget(self.kind_box)
        row.addWidget(self.state_box)
        row.addWidget(self.search, 1)
        row.addWidget(self.summary)
        return row

    def _build_view(self) -> QTableView:
        view = QTableView(self)
        view.setModel(self.model)
        view.setSortingEnabled(True)
        view.sortByColumn(Col.ID, Qt.SortOrder.AscendingOrder)
        view.setItemDelegate(CellDelegate(self.model.cell, view))
        set_up_rows(view, {Col.ID: 76, Col.QUEUE: 70, Col.KIND: 110, Col.PRIORITY: 64,
                           Col.TARGET: 150, Col.STATE: 120, Col.ATTEMPTS: 64, Col.AGE: 60,
                           Col.DEVICE: 120, Col.PROGRESS: 240})
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(self._on_view_context_menu)
        view.selectionModel().selectionChanged.connect(self._on_view_selection_changed)
        return view

    def _build_empty_page(self) -> QWidget:
        page = QWidget(self)
        layout = QVBoxLayout(page)
        layout.addStretch(1)
        self.empty_label = QLabel(EMPTY_TEXT, page)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        layout.addWidget(self.empty_label)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.empty_new = QPushButton("New task\u2026", page)
        self.empty_new.clicked.connect(self.new_task)
        self.empty_bulk = QPushButton("Bulk enqueue\u2026", page)
        self.empty_bulk.clicked.connect(self.bulk_enqueue)
        self.empty_clear = QPushButton("Clear filters", page)
        self.empty_clear.clicked.connect(self._clear_filters)
        for button in (self.empty_new, self.empty_bulk, self.empty_clear):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        layout.addStretch(2)
        return page

    # -- slots ------------------------------------------------------------------------
    def _on_loader_loaded(self, snapshot: QueueSnapshot) -> None:
        self.queues = {q.name: q for q in snapshot.queues}
        self.total = snapshot.total
        self.model.set_paused_queues(q.name for q in snapshot.queues if q.paused)
        self.model.set_tasks(snapshot.tasks)
        self._refresh_queue_box()
        self._refresh_kind_box(snapshot.tasks)
        self._update_queue_controls()
        self._update_empty_state()
        self._update_actions()

    def _on_loader_failed(self, message: str) -> None:
        self.bridge.error.emit(f"Queue: {message}")

    def _on_bridge_tasks_changed(self, _tasks: list[TaskRecord]) -> None:
        self.reload()

    def _on_bridge_progress(self, events: list[ExecutionProgress]) -> None:
        self.model.apply_progress(events)

    def _on_filters_changed(self) -> None:
        state = self.state_box.currentData()
        kind = self.kind_box.currentData()
        self.model.set_filters(
            queue=self.current_queue(),
            kind=None if kind in (None, ALL) else str(kind),
            state=None if state in (None, ALL) else TaskState(state),
            text=self.search.text(),
        )
        self._update_queue_controls()
        self._update_empty_state()
        self._update_actions()

    def _on_view_selection_changed(self, _selected: QItemSelection,
                                   _deselected: QItemSelection) -> None:
        self._update_actions()

    def _on_view_context_menu(self, pos: QPoint) -> None:
        menu = QMenu(self)
        menu.addAction(self.new_action)
        menu.addAction(self.bulk_action)
        menu.addSeparator()
        menu.addAction(self.cancel_action)
        menu.addMenu(self.priority_menu)
        chosen = self.selected_tasks()
        copy = menu.addAction("Copy task id" if len(chosen) < 2 else "Copy task ids")
        copy.setEnabled(bool(chosen))
        copy.triggered.connect(lambda: QGuiApplication.clipboard().setText(
            "\n".join(t.uid for t in chosen)))
        popup_menu(menu, self.view.viewport(), pos)

    def _on_pause_button_clicked(self) -> None:
        name = self.current_queue()
        if name is None:
            return
        paused = not (self.queues.get(name) and self.queues[name].paused)
        self.bridge.run(self.engine.set_queue_paused(name, paused, actor=self._actor),
                        what=f"{'pause' if paused else 'resume'} queue {name}")

    def _on_concurrency_value_changed(self, _value: int) -> None:
        if self.current_queue() is not None:
            self._concurrency_timer.start()

    def _apply_concurrency(self) -> None:
        name = self.current_queue()
        if name is None:
            return
        limit = self.concurrency.value()
        queue = self.queues.get(name)
        if queue is not None and queue.concurrency == limit:
            return
        self.bridge.run(self.engine.set_queue_concurrency(name, limit),
                        what=f"concurrency of queue {name}")

    # -- helpers ----------------------------------------------------------------------
    def _cancel(self, chosen: list[TaskRecord]) -> None:
        for task in chosen:
            self.bridge.run(self.engine.cancel(task.uid, actor=self._actor),
                            what=f"cancel {task.uid[:8]}")

    @staticmethod
    def _waiting(chosen: list[TaskRecord]) -> list[TaskRecord]:
        return [t for t in chosen if t.state in (TaskState.PENDING, TaskState.CLAIMED)]

    def _clear_filters(self) -> None:
        for box in (self.queue_box, self.kind_box, self.state_box):
            box.setCurrentIndex(0)
        self.search.clear()

    def _refresh_queue_box(self) -> None:
        current = self.queue_box.currentData()
        self.queue_box.blockSignals(True)
        while self.queue_box.count() > 1:
            self.queue_box.removeItem(1)
        for queue in self.queues.values():
            label = queue.name + (" (paused)" if queue.paused else "")
            self.queue_box.addItem(label, queue.name)
        index = self.queue_box.findData(current)
        self.queue_box.setCurrentIndex(max(0, index))
        self.queue_box.blockSignals(False)
        if index < 0 and current != ALL:
            self._on_filters_changed()  # the chosen queue disappeared

    def _refresh_kind_box(self, tasks: list[TaskRecord]) -> None:
        for kind in sorted({t.kind for t in tasks}):
            if self.kind_box.findData(kind) < 0:
                self.kind_box.addItem(kind, kind)

    def _update_queue_controls(self) -> None:
        name = self.current_queue()
        queue = self.queues.get(name) if name else None
        self.pause_button.setEnabled(queue is not None)
        self.concurrency.setEnabled(queue is not None)
        if queue is None:
            self.pause_button.setText("Pause queue")
            counts = list(self.queues.values())
            paused = [q.name for q in counts if q.paused]
            text = (f"{sum(q.pending for q in counts)} pending \u00b7 "
                    f"{sum(q.claimed for q in counts)} claimed \u00b7 "
                    f"{sum(q.running for q in counts)} running")
            if paused:
                text += f" \u00b7 paused: {', '.join(paused)}"
            self.queue_counts.setText(text)
            self.pause_button.setToolTip("Choose a queue in the Queue box to pause it")
            return
        self.pause_button.setText("Resume queue" if queue.paused else "Pause queue")
        self.pause_button.setToolTip(f"{'Resume' if queue.paused else 'Pause'} queue "
                                     f"{queue.name}")
        if not self.concurrency.hasFocus() and not self._concurrency_timer.isActive():
            self.concurrency.blockSignals(True)
            self.concurrency.setValue(queue.concurrency)
            self.concurrency.blockSignals(False)
        state = "PAUSED \u00b7 " if queue.paused else ""
        self.queue_counts.setText(f"{state}{queue.pending} pending \u00b7 {queue.claimed} "
                                  f"claimed \u00b7 {queue.running} running")

    def _update_empty_state(self) -> None:
        shown = self.model.rowCount()
        loaded = self.model.loaded_count()
        if shown:
            self.stack.setCurrentIndex(0)
        else:
            filtered = loaded > 0 and self.model.is_filtering()
            self.empty_label.setText(NO_MATCH_TEXT if filtered else EMPTY_TEXT)
            self.empty_new.setVisible(not filtered)
            self.empty_bulk.setVisible(not filtered)
            self.empty_clear.setVisible(filtered)
            self.stack.setCurrentIndex(1)
        text = f"{shown} of {loaded} shown" if shown != loaded else f"{loaded} tasks"
        if self.total > loaded:
            text += f" \u00b7 showing {loaded} of {self.total} (oldest first)"
        self.summary.setText(text)

    def _update_actions(self) -> None:
        chosen = self.selected_tasks()
        self.cancel_action.setEnabled(bool(chosen))
        waiting = bool(self._waiting(chosen))
        self.priority_menu.setEnabled(waiting)
        self.priority_button.setEnabled(waiting)
