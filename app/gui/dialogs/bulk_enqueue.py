"""Bulk enqueue: preview every task of a JSON or CSV file, then queue them at once.

Each row is parsed and validated on its own (kind, target and payload through
``engine.validate``). "Enqueue all" is offered only when every row is valid;
when some are not, the operator may explicitly enqueue just the valid ones.
Queued tasks go in through ``engine.submit_many`` (all or nothing).
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import ValidationError
from app.gui.bridge import EngineBridge
from app.gui.dialogs.bulk_model import BulkPreviewModel, BulkRow, check_rows, read_rows
from app.gui.dialogs.payload_editor import ErrorLabel

FILE_FILTERS = ["Task files (*.json *.csv)", "JSON (*.json)", "CSV (*.csv)", "All files (*)"]
HELP = ("A JSON list of task objects ({\"kind\": \"adb.shell\", \"payload\": {...}, "
        "\"target\": \"device:SERIAL\", ...}) or a CSV with the columns kind, payload, "
        "queue, priority, target, max_attempts, timeout_s, dedupe_key.")


class BulkEnqueueDialog(QDialog):
    """Pick a file, preview its tasks with their verdicts, enqueue.

    Signals:
        enqueued(list): the TaskRecords stored.
    """

    enqueued = Signal(list)

    def __init__(self, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.engine = bridge.engine
        self.path: Path | None = None
        self.model = BulkPreviewModel(self)
        self._file_dialog: QFileDialog | None = None
        self._busy = False
        self.setWindowTitle("Bulk enqueue")
        self.resize(860, 480)
        self._setup_ui()
        self._update_buttons()

    # -- public API -------------------------------------------------------------------
    def choose_file(self) -> QFileDialog:
        """Open the (non-modal) file picker; the file loads when one is chosen."""
        dialog = QFileDialog(self, "Choose a task file")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setNameFilters(FILE_FILTERS)
        dialog.fileSelected.connect(self._on_file_dialog_file_selected)
        self._file_dialog = dialog
        dialog.open()
        return dialog

    def load_file(self, path: Path) -> list[BulkRow]:
        """Read and validate ``path``; the preview shows every row."""
        self.path = Path(path)
        self.path_label.setText(str(self.path))
        self.error.setVisible(False)
        try:
            rows = read_rows(self.path, created_by=getpass.getuser())
        except ValidationError as exc:
            self.model.set_rows([])
            self.error.setText(exc.message)
            self.error.setVisible(True)
            self.summary.setText("")
            self._update_buttons()
            return []
        rows = check_rows(rows, self.engine.validate)
        self.model.set_rows(rows)
        self.view.resizeColumnToContents(BulkPreviewModel.NUMBER)
        self._describe()
        self._update_buttons()
        return rows

    def enqueue_all(self) -> None:
        if self.model.rows and not self.model.invalid():
            self._enqueue(self.model.rows)

    def enqueue_valid(self) -> None:
        if self.model.valid():
            self._enqueue(self.model.valid())

    # -- building -----------------------------------------------------------------------
    def _setup_ui(self) -> None:
        layout = QVBoxLayout(self)
        intro = QLabel(HELP, self)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        row = QHBoxLayout()
        self.choose_button = QPushButton("Choose file\u2026", self)
        self.choose_button.setToolTip("Pick a .json or .csv file of tasks (Ctrl+O)")
        self.choose_button.setShortcut("Ctrl+O")
        self.choose_button.clicked.connect(self.choose_file)
        self.path_label = QLabel("No file chosen", self)
        row.addWidget(self.choose_button)
        row.addWidget(self.path_label, 1)
        layout.addLayout(row)
        self.view = QTableView(self)
        self.view.setModel(self.model)
        self.view.verticalHeader().hide()
        rows = self.view.verticalHeader()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(self.view.fontMetrics().height() + 8)
        self.view.setWordWrap(False)
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.horizontalHeader().setStretchLastSection(True)
        for column, width in ((BulkPreviewModel.STATUS, 260), (BulkPreviewModel.KIND, 120),
                              (BulkPreviewModel.QUEUE, 80), (BulkPreviewModel.PRIORITY, 70),
                              (BulkPreviewModel.TARGET, 130)):
            self.view.setColumnWidth(column, width)
        layout.addWidget(self.view, 1)
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.error = ErrorLabel(self)
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.all_button = self.buttons.addButton("Enqueue all",
                                                 QDialogButtonBox.ButtonRole.AcceptRole)
        self.all_button.setToolTip("Queue every task of the file (only when all are valid)")
        self.valid_button = self.buttons.addButton("Enqueue valid rows",
                                                   QDialogButtonBox.ButtonRole.ActionRole)
        self.valid_button.setToolTip("Queue only the rows without errors; skip the others")
        self.all_button.clicked.connect(self.enqueue_all)
        self.valid_button.clicked.connect(self.enqueue_valid)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    # -- slots ------------------------------------------------------------------------
    def _on_file_dialog_file_selected(self, path: str) -> None:
        if path:
            self.load_file(Path(path))

    def _on_submit_done(self, task: Any) -> None:
        if not shiboken6.isValid(self):
            return
        self._busy = False
        if task.cancelled():
            self._update_buttons()
            return
        error = task.exception()
        if error is not None:
            message = getattr(error, "message", None) or str(error)
            self.error.setText(f"Nothing was enqueued: {message}")
            self.error.setVisible(True)
            self._update_buttons()
            return
        records = task.result()
        queues = sorted({r.queue for r in records})
        self.summary.setText(f"Enqueued {len(records)} task{'s' if len(records) != 1 else ''}"
                             f" into {', '.join(queues)}.")
        self.model.set_rows([])  # done: a second click must not queue them twice
        self._update_buttons()
        self.enqueued.emit(records)

    # -- helpers ----------------------------------------------------------------------
    def _enqueue(self, rows: list[BulkRow]) -> None:
        if self._busy:
            return
        specs = [r.spec for r in rows if r.spec is not None]
        self._busy = True
        self._update_buttons()
        self.summary.setText(f"Enqueueing {len(specs)} tasks\u2026")
        task = self.bridge.run(self.engine.submit_many(specs), what="Bulk enqueue")
        task.add_done_callback(self._on_submit_done)

    def _describe(self) -> None:
        total, bad = len(self.model.rows), self.model.invalid()
        name = self.path.name if self.path else "the file"
        if not bad:
            self.summary.setText(f"{total} task{'s' if total != 1 else ''} read from {name}; "
                                 "all valid.")
            return
        first = bad[0]
        self.summary.setText(f"{total} tasks read from {name}: {total - len(bad)} valid, "
                             f"{len(bad)} with errors.")
        self.error.setText(f"{first.where}: {first.error}" + (
            f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))
        self.error.setVisible(True)

    def _update_buttons(self) -> None:
        rows, valid = self.model.rows, self.model.valid()
        all_ok = bool(rows) and len(valid) == len(rows)
        self.all_button.setEnabled(all_ok and not self._busy)
        self.all_button.setText(f"Enqueue all {len(rows)}" if rows else "Enqueue all")
        some = bool(valid) and not all_ok
        self.valid_button.setEnabled(some and not self._busy)
        self.valid_button.setVisible(bool(rows) and not all_ok)
        self.valid_button.setText(f"Enqueue the {len(valid)} valid rows")
        self.choose_button.setEnabled(not self._busy)
