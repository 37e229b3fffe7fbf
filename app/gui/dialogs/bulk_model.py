"""Reading a bulk task file row by row, and the preview table of what it holds.

The file formats are the CLI's (``taskdesk task add --file``, see
``app.cli.task_cmd.specs_from_file``): a JSON list of task objects (or one
object), or a CSV with columns ``kind,payload,queue,priority,target,
max_attempts,timeout_s,dedupe_key``. The CLI stops at the first bad task; the
preview needs every row with its own verdict, so rows are read here one at a
time with the same rules (a test keeps both readers in step).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication

from app.core.errors import ValidationError
from app.core.taskspec import TaskSpec
from app.gui.panes.rows import ModelIndex, RecordTableModel
from app.gui.theme import status_colors

MAX_ROWS = 100_000


@dataclass(frozen=True)
class BulkRow:
    """One task of the file: its spec when it parses and validates, else why not."""

    number: int  # 1-based position of the task in the file
    raw: Any
    line: int | None = None  # CSV line number
    spec: TaskSpec | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.spec is not None and self.error is None

    @property
    def where(self) -> str:
        return f"task #{self.number}" + (f" (line {self.line})" if self.line else "")


def read_rows(path: Path, *, created_by: str = "", source: str = "gui") -> list[BulkRow]:
    """Parse every task of ``path``; a bad task becomes a row with an error.

    Raises:
        ValidationError: the file as a whole is unusable (unreadable, not JSON,
            no tasks, too many tasks).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read {path.name}: {exc}") from exc
    items: list[tuple[Any, int | None, str | None]] = []
    if path.suffix.lower() == ".csv":
        for line_no, record in enumerate(csv.DictReader(text.splitlines()), start=2):
            parsed, problem = _csv_item(record)
            items.append((parsed, line_no, problem))
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{path.name} is not valid JSON: {exc.msg} (line "
                                  f"{exc.lineno}, column {exc.colno})") from exc
        items = [(task, None, None) for task in (data if isinstance(data, list) else [data])]
    if not items:
        raise ValidationError(f"{path.name} holds no tasks")
    if len(items) > MAX_ROWS:
        raise ValidationError(f"{path.name} holds {len(items)} tasks; at most {MAX_ROWS} "
                              "at once")
    rows = []
    for number, (item, line, error) in enumerate(items, start=1):
        if error is not None:
            rows.append(BulkRow(number, item, line, error=error))
            continue
        try:
            spec = TaskSpec.from_json(item, source=source, created_by=created_by)
        except ValidationError as exc:
            rows.append(BulkRow(number, item, line, error=exc.message))
        except (TypeError, ValueError) as exc:  # a value of an unexpected JSON type
            rows.append(BulkRow(number, item, line, error=f"invalid task: {exc}"))
        else:
            rows.append(BulkRow(number, item, line, spec=spec))
    return rows


def check_rows(rows: list[BulkRow], validate: Callable[[TaskSpec], TaskSpec]) -> list[BulkRow]:
    """Run the engine's kind-aware validation on every parsed row."""
    out = []
    for row in rows:
        if row.spec is None:
            out.append(row)
            continue
        try:
            out.append(replace(row, spec=validate(row.spec)))
        except ValidationError as exc:
            out.append(replace(row, spec=None, error=exc.message))
    return out


def _csv_item(row: dict[str | Any, str | Any]) -> tuple[dict[str, Any], str | None]:
    item: dict[str, Any] = {k: v for k, v in row.items() if k and v not in (None, "")}
    try:
        if "payload" in item:
            item["payload"] = json.loads(item["payload"])
    except json.JSONDecodeError as exc:
        return item, f"payload is not valid JSON: {exc.msg} (column {exc.colno})"
    try:
        if "max_attempts" in item:
            item["max_attempts"] = int(item["max_attempts"])
    except ValueError:
        return item, f"max_attempts must be a whole number, not {item['max_attempts']!r}"
    try:
        if "timeout_s" in item:
            item["timeout_s"] = float(item["timeout_s"])
    except ValueError:
        return item, f"timeout_s must be a number, not {item['timeout_s']!r}"
    return item, None


class BulkPreviewModel(RecordTableModel[BulkRow]):
    """The tasks of a file with their verdicts."""

    NUMBER, STATUS, KIND, QUEUE, PRIORITY, TARGET, PAYLOAD = range(7)
    HEADERS = ("#", "Status", "Kind", "Queue", "Priority", "Target", "Payload")

    @property
    def rows(self) -> list[BulkRow]:
        """Every task of the file, in file order."""
        return self._rows

    def set_rows(self, rows: list[BulkRow]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def valid(self) -> list[BulkRow]:
        return [r for r in self._rows if r.ok]

    def invalid(self) -> list[BulkRow]:
        return [r for r in self._rows if not r.ok]

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row, column = self.record(index.row()), index.column()
        if row is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, column)
        if role == Qt.ItemDataRole.ToolTipRole and column in (self.STATUS, self.PAYLOAD):
            return row.error if column == self.STATUS else self._text(row, column)
        if role == Qt.ItemDataRole.ForegroundRole and column == self.STATUS:
            colours = status_colors(QGuiApplication.palette())
            return QColor(colours["SUCCESS" if row.ok else "FAILURE"])
        return None

    def _text(self, row: BulkRow, column: int) -> str:
        if column == self.NUMBER:
            return str(row.number) if row.line is None else f"{row.number} (line {row.line})"
        if column == self.STATUS:
            return "ok" if row.ok else (row.error or "invalid")
        spec = row.spec
        raw = row.raw if isinstance(row.raw, dict) else {}
        if column == self.KIND:
            return spec.kind if spec else str(raw.get("kind", ""))
        if column == self.QUEUE:
            return spec.queue if spec else str(raw.get("queue", "default"))
        if column == self.PRIORITY:
            return spec.priority.label if spec else str(raw.get("priority", "normal"))
        if column == self.TARGET:
            return str(spec.target) if spec else str(raw.get("target", "any"))
        if column == self.PAYLOAD:
            payload = spec.payload if spec else raw.get("payload", row.raw)
            return json.dumps(payload, ensure_ascii=False)[:500]
        return ""
