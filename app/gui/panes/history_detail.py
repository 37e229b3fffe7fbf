"""Everything about one execution: fields, payload, result, error, metadata, artifacts.

Artifacts are files under the data directory's artifacts folder; only those
are previewed or opened (a path in the metadata pointing elsewhere is listed
but never read), and PNG screenshots get a preview.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, Qt, QUrl
from PySide6.QtGui import (
    QDesktopServices,
    QFontDatabase,
    QPalette,
    QPixmap,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListView,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.records import ExecutionRecord
from app.gui.history_model import NOT_SET, format_duration, format_time
from app.gui.theme import status_colors

PREVIEW_SIZE = 280
PATH_ROLE = Qt.ItemDataRole.UserRole + 1


def pretty_json(value: Any) -> str:
    """Indented JSON (what an operator reads); text that is not JSON-able as ``str``."""
    if value is None:
        return ""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


def artifact_entries(record: ExecutionRecord) -> list[tuple[str, str]]:
    """(label, path) of the files the execution referenced."""
    items = record.metadata.get("artifacts") if record.metadata else None
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            out.append((str(item.get("label") or Path(item["path"]).name), item["path"]))
    return out


class HistoryDetail(QWidget):
    """The detail pane for the selected execution (empty when nothing is selected)."""

    def __init__(self, artifacts_root: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._root = artifacts_root.resolve()
        self._record: ExecutionRecord | None = None
        self._setup_ui()
        self.show_record(None)

    # -- public API ---------------------------------------------------------------------
    def record(self) -> ExecutionRecord | None:
        return self._record

    def show_record(self, record: ExecutionRecord | None) -> None:
        self._record = record
        self.tabs.setVisible(record is not None)
        self.placeholder.setVisible(record is None)
        if record is None:
            self.title.setText("")
            return
        self._fill_title(record)
        self._fill_overview(record)
        monospace = {
            self.payload: pretty_json({"args": record.args, "kwargs": record.kwargs}),
            self.result: pretty_json(record.result),
            self.metadata: pretty_json(record.metadata),
            self.error: "\n\n".join(p for p in (record.error, record.traceback) if p),
        }
        for editor, text in monospace.items():
            if editor.toPlainText() != text:
                editor.setPlainText(text)
        self.tabs.setTabEnabled(self._tab_index["Result"], record.result is not None)
        self.tabs.setTabEnabled(self._tab_index["Error"], bool(record.error or record.traceback))
        self._fill_artifacts(record)

    def is_inside_artifacts(self, path: str | Path) -> bool:
        """True for a file under the artifacts folder (the only ones previewed)."""
        try:
            return Path(path).resolve().is_relative_to(self._root)
        except (OSError, ValueError):
            return False

    def artifact_folder(self) -> Path | None:
        """The folder "Open folder" opens for the current execution."""
        if self._record is None:
            return None
        for _label, path in artifact_entries(self._record):
            if self.is_inside_artifacts(path):
                return Path(path).resolve().parent
        folder = self._root / self._record.task_id
        return folder if folder.is_dir() else None

    # -- set-up and slots -----------------------------------------------------------------
    def _setup_ui(self) -> None:
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.title.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.placeholder = QLabel("Select an execution to see its details.")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.tabs = QTabWidget()
        self._fields: dict[str, QLabel] = {}
        overview = QWidget()
        form = QFormLayout(overview)
        for name in ("Task id", "Task", "Module", "Status", "Device / agent", "Created by",
                     "Attempt", "Created", "Started", "Finished", "Duration", "Timeout",
                     "Error"):
            label = QLabel()
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(name == "Error")
            self._fields[name] = label
            form.addRow(name, label)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress_text = QLabel()
        self.progress_text.setWordWrap(True)
        progress_box = QWidget()
        progress_layout = QVBoxLayout(progress_box)
        progress_layout.setContentsMargins(0, 0, 0, 0)
        progress_layout.addWidget(self.progress)
        progress_layout.addWidget(self.progress_text)
        form.addRow("Progress", progress_box)
        fixed = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.payload, self.result, self.error, self.metadata = (
            QPlainTextEdit() for _ in range(4))
        for editor in (self.payload, self.result, self.error, self.metadata):
            editor.setReadOnly(True)
            editor.setFont(fixed)
            editor.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.artifacts_model = QStandardItemModel(self)
        self.artifacts = QListView()
        self.artifacts.setModel(self.artifacts_model)
        self.artifacts.setUniformItemSizes(True)
        self.artifacts.selectionModel().currentChanged.connect(self._on_artifacts_current_changed)
        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumHeight(120)
        self.open_folder = QPushButton("Open folder")
        self.open_folder.setToolTip("Open the execution's artifacts folder in the file manager")
        self.open_folder.clicked.connect(self._on_open_folder_clicked)
        files = QWidget()
        files_layout = QVBoxLayout(files)
        files_layout.addWidget(self.artifacts, 1)
        files_layout.addWidget(self.preview, 2)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.open_folder)
        files_layout.addLayout(row)
        self._tab_index: dict[str, int] = {}
        for name, widget in (("Overview", overview), ("Payload", self.payload),
                             ("Result", self.result), ("Error", self.error),
                             ("Metadata", self.metadata), ("Artifacts", files)):
            self._tab_index[name] = self.tabs.addTab(widget, name)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.placeholder, 1)
        layout.addWidget(self.tabs, 1)

    def _on_artifacts_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._show_preview(current.data(PATH_ROLE) if current.isValid() else None)

    def _on_open_folder_clicked(self) -> None:
        folder = self.artifact_folder()
        if folder is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    # -- internals --------------------------------------------------------------------------
    def _fill_title(self, record: ExecutionRecord) -> None:
        colour = status_colors(self.palette()).get(record.status.value)
        text = self.palette().color(QPalette.ColorRole.WindowText)
        status = (f"<span style='color:{(colour or text).name()}'><b>"
                  f"{record.status.value}</b></span>")
        self.title.setText(f"<b>#{record.id}</b> {record.task_name} &nbsp;{status}")

    def _fill_overview(self, record: ExecutionRecord) -> None:
        values = {
            "Task id": record.task_id, "Task": record.task_name, "Module": record.module,
            "Status": record.status.value,
            "Device / agent": record.device_serial or record.agent_uuid or NOT_SET,
            "Created by": record.created_by or NOT_SET, "Attempt": str(record.attempt),
            "Created": format_time(record.created_at), "Started": format_time(record.started_at),
            "Finished": format_time(record.finished_at),
            "Duration": format_duration(record.duration),
            "Timeout": NOT_SET if record.timeout_s is None else f"{record.timeout_s:g} s",
            "Error": (record.error or "").splitlines()[0] if record.error else NOT_SET,
        }
        for name, value in values.items():
            self._fields[name].setText(value)
        meta = record.metadata or {}
        percent = meta.get("progress_percent")
        reported = isinstance(percent, int | float)
        self.progress.setVisible(reported)
        self.progress.setValue(int(percent) if isinstance(percent, int | float) else 0)
        detail = [str(meta[k]) for k in ("progress_step", "progress_message") if meta.get(k)]
        self.progress_text.setText(" \u2014 ".join(detail) if detail or reported
                                   else "None reported")

    def _fill_artifacts(self, record: ExecutionRecord) -> None:
        entries = artifact_entries(record)
        self.artifacts_model.clear()
        for label, path in entries:
            inside = self.is_inside_artifacts(path)
            item = QStandardItem(f"{label}  ({Path(path).name})")
            item.setData(path if inside else None, PATH_ROLE)
            item.setToolTip(path if inside else f"{path} (outside the artifacts folder)")
            item.setEditable(False)
            self.artifacts_model.appendRow(item)
        self.tabs.setTabText(self._tab_index["Artifacts"],
                             f"Artifacts ({len(entries)})" if entries else "Artifacts")
        self.open_folder.setEnabled(self.artifact_folder() is not None)
        first_png = next((n for n, (_l, p) in enumerate(entries)
                          if p.lower().endswith(".png") and self.is_inside_artifacts(p)), None)
        if first_png is not None:
            self.artifacts.setCurrentIndex(self.artifacts_model.index(first_png, 0))
        else:
            self._show_preview(None)

    def _show_preview(self, path: str | None) -> None:
        pixmap = QPixmap()
        if path and path.lower().endswith(".png") and Path(path).is_file():
            pixmap.load(path)
        if pixmap.isNull():
            self.preview.setPixmap(QPixmap())
            self.preview.setText("No preview" if path else "")
            return
        self.preview.setPixmap(pixmap.scaled(
            PREVIEW_SIZE, PREVIEW_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation))
