"""Per-device progress and result of the APK installs started from the devices pane.

One row per ``adb.install`` task the pane enqueued; rows follow the task's
state from ``bridge.tasks_changed`` (queued, installing, retrying, installed,
failed, cancelled). The panel hides itself while it has nothing to show.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, Qt, QTimer
from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core.enums import TaskState
from app.core.records import TaskRecord
from app.engine.bus import ExecutionProgress
from app.gui.panes.rows import ModelIndex, RecordTableModel
from app.gui.panes.wiring import set_up_rows
from app.gui.theme import status_colors

# Task state -> (label, execution status whose colour the label takes).
_STATES: dict[TaskState, tuple[str, str]] = {
    TaskState.PENDING: ("Queued", "PENDING"),
    TaskState.CLAIMED: ("Starting", "STARTED"),
    TaskState.RUNNING: ("Installing", "STARTED"),
    TaskState.SUCCEEDED: ("Installed", "SUCCESS"),
    TaskState.FAILED: ("Failed", "FAILURE"),
    TaskState.DEAD: ("Failed", "FAILURE"),
    TaskState.CANCELLED: ("Cancelled", "REVOKED"),
}


@dataclass(frozen=True)
class InstallRow:
    uid: str
    serial: str
    device: str
    apk: str
    state: TaskState = TaskState.PENDING
    attempts: int = 0
    max_attempts: int = 1
    percent: int | None = None
    detail: str = ""
    started: float | None = None

    @property
    def finished(self) -> bool:
        return self.state.is_terminal

    def status_text(self, now: float) -> str:
        label = _STATES[self.state][0]
        if self.state is TaskState.PENDING and self.attempts:
            return f"Retrying ({self.attempts}/{self.max_attempts} tried)"
        if self.state is TaskState.RUNNING:
            parts = [label, f"{self.percent}%" if self.percent is not None else ""]
            if self.started is not None:
                parts.append(f"{max(0, int(now - self.started))} s")
            return " ".join(p for p in parts if p)
        return label


class InstallStatusModel(RecordTableModel[InstallRow]):
    """The installs started from this console, newest last."""

    DEVICE, APK, STATUS, RESULT = range(4)
    HEADERS = ("Device", "APK", "Status", "Result")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._index: dict[str, int] = {}
        self._colours: tuple[int, dict[str, QColor]] | None = None
        self._clock = QTimer(self)  # the "Installing 12 s" counter
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._on_clock_timeout)

    def add(self, records: Iterable[TaskRecord], titles: dict[str, str]) -> None:
        """Track these freshly enqueued install tasks."""
        new = [r for r in records if r.uid not in self._index]
        if not new:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
        for record in new:
            serial = record.target.serial or ""
            self._index[record.uid] = len(self._rows)
            self._rows.append(InstallRow(
                uid=record.uid, serial=serial, device=titles.get(serial, serial),
                apk=Path(str(record.payload.get("apk", ""))).name, state=record.state,
                max_attempts=record.max_attempts))
        self.endInsertRows()

    def apply_tasks(self, records: Iterable[TaskRecord]) -> None:
        """Follow state changes of tracked tasks (others are ignored)."""
        for record in records:
            row = self._index.get(record.uid)
            if row is None:
                continue
            old = self._rows[row]
            started = old.started
            if record.state is TaskState.RUNNING and started is None:
                started = time.time()
            self._rows[row] = replace(
                old, state=record.state, attempts=record.attempts, started=started,
                percent=None if record.state.is_terminal else old.percent,
                detail=_detail(record) or old.detail)
            self._changed(row)
        self._tick_when_running()

    def apply_progress(self, events: Iterable[ExecutionProgress]) -> None:
        for event in events:
            row = self._index.get(event.task_uid)
            if row is not None and event.percent is not None:
                self._rows[row] = replace(self._rows[row], percent=event.percent)
                self._changed(row)

    def clear_finished(self) -> None:
        keep = [row for row in self._rows if not row.finished]
        self.beginResetModel()
        self._rows = keep
        self._index = {row.uid: n for n, row in enumerate(keep)}
        self.endResetModel()

    def rows(self) -> list[InstallRow]:
        return list(self._rows)

    def row_for(self, uid: str) -> InstallRow | None:
        index = self._index.get(uid)
        return None if index is None else self._rows[index]

    # -- Qt model interface ----------------------------------------------------------
    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row, column = self.record(index.row()), index.column()
        if row is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return (row.device, row.apk, row.status_text(time.time()),
                    row.detail)[column]
        if role == Qt.ItemDataRole.ToolTipRole:
            return {self.DEVICE: row.serial, self.RESULT: row.detail or None,
                    self.APK: row.apk}.get(column)
        if role == Qt.ItemDataRole.ForegroundRole and column == self.STATUS:
            return self._status_colour(_STATES[row.state][1])
        return None

    # -- internals ---------------------------------------------------------------------
    def _changed(self, row: int) -> None:
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.HEADERS) - 1))

    def _tick_when_running(self) -> None:
        running = any(r.state is TaskState.RUNNING for r in self._rows)
        if running and not self._clock.isActive():
            self._clock.start()
        elif not running:
            self._clock.stop()

    def _on_clock_timeout(self) -> None:
        for row, install in enumerate(self._rows):
            if install.state is TaskState.RUNNING:
                self.dataChanged.emit(self.index(row, self.STATUS), self.index(row, self.STATUS))
        self._tick_when_running()

    def _status_colour(self, status: str) -> QColor | None:
        palette = QGuiApplication.palette()
        if self._colours is None or self._colours[0] != palette.cacheKey():
            self._colours = (palette.cacheKey(), status_colors(palette))
        return self._colours[1].get(status)


def _detail(record: TaskRecord) -> str:
    if record.state is TaskState.SUCCEEDED and isinstance(record.result, dict):
        return str(record.result.get("message") or "Success")
    if record.last_error and (record.state.is_terminal or record.attempts):
        return record.last_error.splitlines()[0]
    return ""


class InstallStatusPanel(QWidget):
    """A compact list of installs with a "Clear finished" button; hidden when empty."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = InstallStatusModel(self)
        self._setup_ui()
        self.model.rowsInserted.connect(self._on_model_rows_changed)
        self.model.modelReset.connect(self._on_model_rows_changed)
        self.model.dataChanged.connect(self._on_model_rows_changed)
        self._on_model_rows_changed()

    def _setup_ui(self) -> None:
        self.title = QLabel("APK installs")
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.setToolTip("Remove installed, failed and cancelled rows")
        self.clear_button.clicked.connect(self._on_clear_button_clicked)
        head = QHBoxLayout()
        head.setContentsMargins(6, 0, 6, 0)
        head.addWidget(self.title)
        head.addStretch(1)
        head.addWidget(self.clear_button)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        set_up_rows(self.table, {InstallStatusModel.DEVICE: 150, InstallStatusModel.APK: 170,
                                 InstallStatusModel.STATUS: 130}, row_padding=6)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(head)
        layout.addWidget(self.table)

    def _on_model_rows_changed(self, *_args: object) -> None:
        rows = self.model.rows()
        done = sum(r.finished for r in rows)
        failed = sum(r.state in (TaskState.FAILED, TaskState.DEAD) for r in rows)
        self.title.setText(f"APK installs: {done} of {len(rows)} finished"
                           + (f", {failed} failed" if failed else ""))
        self.clear_button.setEnabled(done > 0)
        self.setVisible(bool(rows))

    def _on_clear_button_clicked(self) -> None:
        self.model.clear_finished()
