"""The History pane's filter bar: module, task name, statuses, device, creator, dates, text.

Edits apply after a short pause (so typing does not query on every key), at
once on Enter. A filter the store would refuse (a date range that ends before
it starts, search text that is too long) is explained inline and not applied.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QDateTime, QEvent, QTime, QTimer, Signal
from PySide6.QtGui import QAction, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.enums import ExecStatus
from app.core.errors import ValidationError
from app.core.history import MAX_TEXT, ExecutionFilter
from app.gui.theme import status_colors

DEBOUNCE_MS = 350
DATE_FORMAT = "yyyy-MM-dd HH:mm"


def _combo(placeholder: str, tip: str, width: int) -> QComboBox:
    box = QComboBox()
    box.setEditable(True)
    box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
    box.setMinimumWidth(width)
    box.setToolTip(tip)
    line = box.lineEdit()
    assert line is not None  # editable combo boxes have one
    line.setPlaceholderText(placeholder)
    line.setClearButtonEnabled(True)
    return box


class HistoryFilterBar(QWidget):
    """Builds an :class:`ExecutionFilter` from its widgets.

    Signals:
        filter_changed(object): a new valid filter (an ExecutionFilter) to show.
    """

    filter_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._applied = ExecutionFilter()
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.apply_now)
        self._setup_ui()

    # -- public API ------------------------------------------------------------------------
    def current_filter(self) -> ExecutionFilter:
        """The filter the widgets describe now.

        Raises:
            ValidationError: the widgets describe a filter the store would refuse.
        """
        statuses = tuple(ExecStatus(a.data()) for a in self._status_actions if a.isChecked())
        since = self.since.dateTime().toSecsSinceEpoch() if self.since_box.isChecked() else None
        until = self.until.dateTime().toSecsSinceEpoch() if self.until_box.isChecked() else None
        return ExecutionFilter(
            module=_text(self.module.currentText()),
            task_name=_text(self.task_name.currentText()),
            statuses=statuses,
            device_serial=_text(self.device.currentText()),
            created_by=_text(self.created_by.text()),
            since=float(since) if since is not None else None,
            until=float(until) if until is not None else None,
            text=_text(self.search.text()),
        )

    def applied_filter(self) -> ExecutionFilter:
        """The last filter emitted."""
        return self._applied

    def apply_now(self) -> None:
        """Emit the filter if it is valid and new; otherwise explain what is wrong."""
        self._debounce.stop()
        try:
            wanted = self.current_filter()
        except ValidationError as exc:
            self._show_error(exc.message)
            return
        self._show_error("")
        if wanted != self._applied:
            self._applied = wanted
            self.filter_changed.emit(wanted)

    def set_statuses(self, statuses: Iterable[ExecStatus]) -> None:
        """Show only these statuses (the stats strip's chips use this); applies at once."""
        wanted = set(statuses)
        for action in self._status_actions:
            action.blockSignals(True)
            action.setChecked(ExecStatus(action.data()) in wanted)
            action.blockSignals(False)
        self._update_status_text()
        self.apply_now()

    def set_choices(self, *, modules: Iterable[str] = (), task_names: Iterable[str] = (),
                    devices: Iterable[str] = ()) -> None:
        """Offer known values in the drop-downs; whatever is typed is kept."""
        for box, values in ((self.module, modules), (self.task_name, task_names),
                            (self.device, devices)):
            text = box.currentText()
            box.blockSignals(True)
            box.clear()
            box.addItems(sorted(set(values)))
            box.setEditText(text)
            box.blockSignals(False)

    def reset(self) -> None:
        """Clear every condition (shows everything)."""
        for box in (self.module, self.task_name, self.device):
            box.setEditText("")
        self.created_by.clear()
        self.search.clear()
        self.since_box.setChecked(False)
        self.until_box.setChecked(False)
        self.set_statuses(())

    def error_text(self) -> str:
        return self.error.text() if self.error.isVisible() else ""

    # -- set-up and slots -------------------------------------------------------------------
    def _setup_ui(self) -> None:
        self.module = _combo("Module", "Only executions of this module (the task's queue)", 120)
        self.task_name = _combo("Task name", "Only executions of this task kind", 150)
        self.device = _combo("Device", "Only executions on this device serial", 150)
        self.created_by = QLineEdit()
        self.created_by.setPlaceholderText("Created by")
        self.created_by.setClearButtonEnabled(True)
        self.created_by.setMaximumWidth(130)
        self.status_button = QToolButton()
        self.status_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.status_button.setMinimumWidth(120)
        self.status_button.setToolTip("Show only executions with these statuses")
        menu = QMenu(self.status_button)
        self._status_actions: list[QAction] = []
        for status in ExecStatus:
            action = QAction(status.value, menu)
            action.setCheckable(True)
            action.setData(status.value)
            action.toggled.connect(self._on_status_action_toggled)
            menu.addAction(action)
            self._status_actions.append(action)
        self.status_button.setMenu(menu)
        self._update_status_text()

        now = QDateTime.currentDateTime()
        self.since_box = QCheckBox("Since")
        self.since = QDateTimeEdit(QDateTime(now.date(), QTime(0, 0)))
        self.until_box = QCheckBox("Until")
        self.until = QDateTimeEdit(now.addSecs(3600))
        for check, edit, tip in ((self.since_box, self.since, "created at or after"),
                                 (self.until_box, self.until, "created before")):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat(DATE_FORMAT)
            edit.setEnabled(False)
            edit.setToolTip(f"Only executions {tip} this time (local time)")
            check.toggled.connect(edit.setEnabled)
            check.toggled.connect(self._on_field_edited)
            edit.dateTimeChanged.connect(self._on_field_edited)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search task name or task id (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.setMaxLength(MAX_TEXT + 1)  # one over, so the limit is explained
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Clear every filter")
        self.reset_button.clicked.connect(self.reset)
        self.error = QLabel()
        self.error.hide()

        for combo in (self.module, self.task_name, self.device):
            combo.editTextChanged.connect(self._on_field_edited)
            editor = combo.lineEdit()
            if editor is not None:
                editor.returnPressed.connect(self.apply_now)
        for line in (self.created_by, self.search):
            line.textChanged.connect(self._on_field_edited)
            line.returnPressed.connect(self.apply_now)

        first = QHBoxLayout()
        row_one: tuple[QWidget, ...] = (self.module, self.task_name, self.status_button,
                                        self.device, self.created_by)
        for widget in row_one:
            first.addWidget(widget)
        first.addStretch(1)
        second = QHBoxLayout()
        row_two: tuple[QWidget, ...] = (self.since_box, self.since, self.until_box, self.until)
        for widget in row_two:
            second.addWidget(widget)
        second.addWidget(self.search, 1)
        second.addWidget(self.reset_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 2)
        layout.setSpacing(4)
        layout.addLayout(first)
        layout.addLayout(second)
        layout.addWidget(self.error)

    def _on_field_edited(self, *_args: object) -> None:
        self._debounce.start()

    def _on_status_action_toggled(self, _on: bool) -> None:
        self._update_status_text()
        self._debounce.start()

    # -- internals ---------------------------------------------------------------------------
    def _update_status_text(self) -> None:
        chosen = [a.text() for a in self._status_actions if a.isChecked()]
        self.status_button.setText("Status: " + (", ".join(chosen) if chosen else "any"))

    def _show_error(self, message: str) -> None:
        if message:
            palette = self.error.palette()
            palette.setColor(QPalette.ColorRole.WindowText, status_colors(palette)["FAILURE"])
            self.error.setPalette(palette)
        self.error.setText(message)
        self.error.setVisible(bool(message))


class StatsStrip(QWidget):
    """The count of the filter and one chip per status; a chip narrows to its status.

    Signals:
        status_clicked(object): the ExecStatus whose chip was clicked.
    """

    status_clicked = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._stats: dict[str, Any] = {}
        self.count_label = QLabel("Loading\u2026")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        layout.addWidget(self.count_label)
        self.chips: dict[str, QToolButton] = {}
        for status in ExecStatus:
            chip = QToolButton()
            chip.setAutoRaise(True)
            chip.setToolTip(f"Show only {status.value} executions")
            chip.clicked.connect(lambda _c=False, s=status: self.status_clicked.emit(s))
            self.chips[status.value] = chip
            layout.addWidget(chip)
        layout.addStretch(1)
        self._render()

    def set_stats(self, stats: dict[str, Any]) -> None:
        """Show counts keyed by lower-case status (``status_counts``' shape)."""
        self._stats = dict(stats)
        self._render()

    def _render(self) -> None:
        colours = status_colors(self.palette())
        for status, chip in self.chips.items():
            count = int(self._stats.get(status.lower(), 0))
            chip.setText(f"{status} {count:,}")
            palette = chip.palette()
            palette.setColor(chip.foregroundRole(), colours[status])
            chip.setPalette(palette)
            chip.setEnabled(count > 0 or not self._stats)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._render()  # status colours follow the theme


def _text(value: str) -> str | None:
    value = value.strip()
    return value or None
