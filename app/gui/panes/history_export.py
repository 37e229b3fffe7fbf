"""CSV export of the executions matching a filter, streamed a keyset page at a time.

A worker thread asks the store thread for one page (``query_executions`` with
a cursor) at a time and appends it to a temporary file, so the store stays
responsive to the engine between pages and memory stays at one page however
many rows match. The file appears under its final name only once complete.
Only reference fields are written: never payloads, results or metadata, where
secrets could hide.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.core.clock import iso
from app.core.history import Cursor, ExecutionFilter, Page
from app.core.records import ExecutionRecord
from app.store import history

log = logging.getLogger(__name__)

CSV_FIELDS = ("id", "task_id", "task_name", "module", "status", "device_serial", "agent_uuid",
              "created_by", "created_at", "started_at", "finished_at", "duration", "attempt",
              "error")
PAGE_ROWS = 1000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Submit = Callable[..., "concurrent.futures.Future[Any]"]


def csv_row(record: ExecutionRecord) -> list[str]:
    """One execution as CSV cells (times in ISO 8601 UTC, duration in seconds)."""
    duration = record.duration
    values: dict[str, Any] = {
        "id": record.id, "task_id": record.task_id, "task_name": record.task_name,
        "module": record.module, "status": record.status.value,
        "device_serial": record.device_serial or "", "agent_uuid": record.agent_uuid or "",
        "created_by": record.created_by, "created_at": iso(record.created_at) or "",
        "started_at": iso(record.started_at) or "", "finished_at": iso(record.finished_at) or "",
        "duration": "" if duration is None else f"{duration:.3f}",
        "attempt": record.attempt, "error": record.error or "",
    }
    return [_safe_cell(str(values[name])) for name in CSV_FIELDS]


def _safe_cell(text: str) -> str:
    # A cell starting like a formula runs as one in spreadsheet programs (CSV injection).
    return "'" + text if text.startswith(_FORMULA_START) else text


def export_csv(submit: Submit, filter: ExecutionFilter, path: Path, *,  # noqa: A002
               cancel: threading.Event | None = None,
               progress: Callable[[int, int], None] | None = None) -> int:
    """Write every execution matching ``filter`` (newest first) to ``path``; returns rows.

    Args:
        submit: runs a store function on the store thread (``engine.store.submit``).
        cancel: set it to stop; the partial file is removed.
        progress: called with (rows written, rows matching) after each page.

    Raises:
        OSError: the file could not be written. InterruptedError: cancelled.
    """
    total = int(submit(history.count_executions, filter).result())
    partial = path.with_name(path.name + ".part")
    written = 0
    cursor: Cursor | None = None
    try:
        with partial.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_FIELDS)
            while True:
                if cancel is not None and cancel.is_set():
                    raise InterruptedError("export cancelled")
                page: Page = submit(history.query_executions, filter, limit=PAGE_ROWS,
                                    before=cursor).result()
                writer.writerows(csv_row(record) for record in page.items)
                written += len(page.items)
                if progress is not None:
                    progress(written, max(total, written))
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return written


class CsvExporter(QObject):
    """Runs :func:`export_csv` in a thread and reports on the GUI thread.

    Signals:
        progressed(int, int): rows written, rows matching.
        finished(str, int): the file written and its row count.
        failed(str): why the export stopped ("cancelled" when asked to).
    """

    progressed = Signal(int, int)
    finished = Signal(str, int)
    failed = Signal(str)

    def __init__(self, submit: Submit, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._submit = submit
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, filter: ExecutionFilter, path: str | Path) -> None:  # noqa: A002
        """Begin exporting (one export at a time)."""
        if self.running():
            raise RuntimeError("an export is already running")
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(filter, Path(path), self._cancel),
                                        name="history-export", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    def _run(self, filter: ExecutionFilter, path: Path,  # noqa: A002
             cancel: threading.Event) -> None:
        try:
            rows = export_csv(self._submit, filter, path, cancel=cancel,
                              progress=lambda done, total: self._emit(self.progressed, done,
                                                                      total))
        except InterruptedError:
            self._emit(self.failed, "cancelled")
        except Exception as exc:
            log.warning("history export to %s failed: %s", path, exc)
            self._emit(self.failed, getattr(exc, "strerror", None) or str(exc))
        else:
            self._emit(self.finished, str(path), rows)

    def _emit(self, signal: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the pane was closed meanwhile
            signal.emit(*args)
