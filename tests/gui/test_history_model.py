"""The windowed history model over a real SQLite store of 100,000 executions."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import peewee
import pytest
from peewee import fn
from PySide6.QtCore import Qt, QThread
from PySide6.QtWidgets import QApplication, QTableView

from app.core.enums import ExecStatus
from app.core.records import ExecutionRecord
from app.gui.history_model import (
    PLACEHOLDER,
    ExecutionHistoryModel,
    configure_view,
    format_duration,
)
from app.gui.pagecache import PageCache
from app.gui.theme import status_colors
from app.store.db import close_database, database_proxy, open_database
from app.store.models import Execution

TOTAL = 100_000
BLOCK = 1_000  # rows written by insert_many; SQLite copies the block 99 more times
BASE_TIME = 1_700_000_000.0
STATUSES = ["SUCCESS", "SUCCESS", "SUCCESS", "FAILURE", "REVOKED", "STARTED"]


def _row(i: int) -> dict[str, Any]:
    status = STATUSES[i % len(STATUSES)]
    created = BASE_TIME + i * 2.0
    return {
        "task_id": f"task-{i:06d}",
        "task_name": f"capture_{i % 7}",
        "module": ("camera", "install", "shell")[i % 3],
        "status": status,
        "attempt": 1,
        "device_serial": f"SER{i % 40:03d}",
        "created_by": "ops",
        "args": [],
        "kwargs": {},
        "metadata": {"progress_percent": 100} if status == "SUCCESS" else {},
        "error": "device_lost\nTraceback..." if status == "FAILURE" else None,
        "created_at": created,
        "started_at": created + 0.5,
        "finished_at": None if status == "STARTED" else created + 1.75,
    }


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store with 100,000 executions, built once per module and copied per test.

    peewee spends ~100 us of Python per row building a multi-row INSERT, so the
    first block goes through ``insert_many`` and the other 99 are copied by
    SQLite (INSERT ... SELECT with shifted ids and times): 100k rows in well
    under a second instead of ~13 s.
    """
    path = tmp_path_factory.mktemp("history") / "template.sqlite"
    db = open_database(path)
    db.create_tables([Execution])
    with db.atomic():
        Execution.insert_many([_row(i) for i in range(BLOCK)]).execute()
        for block in range(1, TOTAL // BLOCK):
            shift = block * BLOCK * 2.0
            copy = Execution.select(
                fn.printf("task-%06d", Execution.id - 1 + block * BLOCK),
                Execution.task_name, Execution.module, Execution.status, Execution.attempt,
                Execution.device_serial, Execution.created_by, Execution.args,
                Execution.kwargs, Execution.metadata, Execution.error,
                Execution.created_at + shift, Execution.started_at + shift,
                Execution.finished_at + shift,
            ).where(Execution.id <= BLOCK)
            Execution.insert_from(copy, [
                Execution.task_id, Execution.task_name, Execution.module, Execution.status,
                Execution.attempt, Execution.device_serial, Execution.created_by,
                Execution.args, Execution.kwargs, Execution.metadata, Execution.error,
                Execution.created_at, Execution.started_at, Execution.finished_at,
            ]).execute()
    assert Execution.select().count() == TOTAL
    db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    close_database()
    return path


class SqlitePageSource:
    """Test-only page source: plain peewee queries (newest first, OFFSET) run on
    one worker thread, the way the engine runs store queries on its own thread."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self._executor = executor
        self.calls: list[tuple[Any, ...]] = []
        self.threads: set[str] = set()

    def count(self, filter: Any) -> Future[int]:  # noqa: A002
        self.calls.append(("count", filter))
        return self._executor.submit(self._count, filter)

    def window(self, filter: Any, offset: int, limit: int) -> Future[list[ExecutionRecord]]:  # noqa: A002
        self.calls.append(("window", filter, offset, limit))
        return self._executor.submit(self._window, filter, offset, limit)

    def windows(self) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == "window"]

    def _query(self, filter: Any) -> peewee.ModelSelect:  # noqa: A002
        query = Execution.select()
        if filter and filter.get("status"):
            query = query.where(Execution.status == filter["status"])
        return query

    def _count(self, filter: Any) -> int:  # noqa: A002
        self.threads.add(threading.current_thread().name)
        return int(self._query(filter).count())

    def _window(self, filter: Any, offset: int, limit: int) -> list[ExecutionRecord]:  # noqa: A002
        self.threads.add(threading.current_thread().name)
        rows = (self._query(filter)
                .order_by(Execution.created_at.desc(), Execution.id.desc())
                .offset(offset).limit(limit))
        return [_record(row) for row in rows]


def _record(row: Execution) -> ExecutionRecord:
    return ExecutionRecord(
        id=row.id, task_id=row.task_id, task_name=row.task_name, module=row.module,
        status=ExecStatus(row.status), created_at=row.created_at, attempt=row.attempt,
        device_serial=row.device_serial, created_by=row.created_by, metadata=row.metadata,
        error=row.error, started_at=row.started_at, finished_at=row.finished_at,
    )


@pytest.fixture
def source(template_db: Path, tmp_path: Path) -> Iterator[SqlitePageSource]:
    path = tmp_path / "store.sqlite"
    shutil.copy(template_db, path)
    open_database(path)
    executor = ThreadPoolExecutor(1, thread_name_prefix="store")
    yield SqlitePageSource(executor)
    executor.submit(lambda: database_proxy.obj.close()).result()
    executor.shutdown(wait=True)
    close_database()


@pytest.fixture
def model(qtbot, source: SqlitePageSource) -> ExecutionHistoryModel:
    model = ExecutionHistoryModel(source)
    with qtbot.waitSignal(model.count_changed, timeout=10_000):
        pass
    return model


def _load(qtbot, model: ExecutionHistoryModel, row: int) -> ExecutionRecord:
    if not model.is_loaded(row):
        with qtbot.waitSignal(model.page_loaded, timeout=10_000):
            model.index(row, 0).data()
    record = model.record(row)
    assert record is not None
    return record


def test_row_count_is_the_true_total_from_one_count(
    model: ExecutionHistoryModel, source: SqlitePageSource
) -> None:
    assert model.rowCount() == TOTAL
    # The first page is asked for before the count; nothing else is read.
    assert source.calls == [("window", None, 0, 200), ("count", None)]
    assert model.columnCount() == 12
    assert model.headerData(model.STATUS, Qt.Orientation.Horizontal) == "Status"


def test_the_first_page_shows_before_a_slow_count_and_the_rest_goes_below_it(
    qtbot, source: SqlitePageSource
) -> None:
    release = threading.Event()

    class SlowCount(SqlitePageSource):
        def _count(self, filter: Any) -> int:  # noqa: A002
            release.wait(10)
            return super()._count(filter)

    slow = SlowCount(ThreadPoolExecutor(2, thread_name_prefix="store"))
    model = ExecutionHistoryModel(slow)
    inserted: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda _parent, first, last: inserted.append((first, last)))
    try:
        qtbot.waitUntil(lambda: model.rowCount() == 200, timeout=10_000)
        assert model.is_counting()
        newest = model.record(0)
        assert newest is not None and newest.task_id == f"task-{TOTAL - 1:06d}"
    finally:
        release.set()
    qtbot.waitUntil(lambda: model.rowCount() == TOTAL, timeout=10_000)
    assert inserted == [(0, 199), (200, TOTAL - 1)]  # the rest below, not on top
    assert model.record(0) == newest and not model.is_counting()


def test_jumping_to_the_last_row_loads_that_page_only(
    qtbot, model: ExecutionHistoryModel, source: SqlitePageSource
) -> None:
    last = TOTAL - 1
    assert model.index(last, model.ID).data() == PLACEHOLDER
    # Asked again while loading: still a single request.
    model.index(last, model.TASK_NAME).data()
    model.index(last - 5, model.STATUS).data()
    with qtbot.waitSignal(model.page_loaded, timeout=10_000) as loaded:
        pass
    assert loaded.args == [(TOTAL - 1) // 200]
    assert source.windows() == [("window", None, 0, 200), ("window", None, 99_800, 200)]
    oldest = model.record(last)
    assert oldest is not None and oldest.task_id == "task-000000"
    assert model.index(last, model.ID).data() == str(oldest.id)
    assert model.index(last, model.DURATION).data() == "1.2 s"
    assert model.cached_pages() == [0, 499]


def test_results_are_applied_on_the_gui_thread(
    qtbot, qapp: QApplication, model: ExecutionHistoryModel, source: SqlitePageSource
) -> None:
    threads: list[QThread] = []
    model.dataChanged.connect(lambda *a: threads.append(QThread.currentThread()))
    _load(qtbot, model, 1000)
    assert threads and all(t is qapp.thread() for t in threads)
    assert source.threads and not source.threads & {threading.current_thread().name}


def test_cache_stays_bounded_and_evicted_pages_reload(
    qtbot, model: ExecutionHistoryModel, source: SqlitePageSource
) -> None:
    for page in range(30):
        _load(qtbot, model, page * 200 + 7)
    assert len(model.cached_pages()) == 20
    assert model.cached_pages()[0] == 10  # pages 0-9 were least recently used
    before = len(source.windows())
    assert model.record(0) is None  # evicted
    record = _load(qtbot, model, 0)
    assert len(source.windows()) == before + 1
    assert record.task_id == f"task-{TOTAL - 1:06d}"


def test_refresh_shows_new_rows_at_the_top(
    qtbot, model: ExecutionHistoryModel, source: SqlitePageSource
) -> None:
    old_top = _load(qtbot, model, 0)
    newest = BASE_TIME + TOTAL * 2.0 + 100
    source._executor.submit(lambda: Execution.insert_many([
        {**_row(TOTAL + k), "task_id": f"new-{k}", "created_at": newest + k} for k in range(3)
    ]).execute()).result()
    inserted: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda parent, a, b: inserted.append((a, b)))
    with qtbot.waitSignal(model.count_changed, timeout=10_000):
        model.refresh()
    assert model.rowCount() == TOTAL + 3
    assert inserted == [(0, 2)]
    # Until the fresh page arrives, the old rows show, moved down by three.
    assert model.record(3) == old_top
    top = _load(qtbot, model, 0)
    assert top.task_id == "new-2"
    assert model.record(3) is not None and model.record(3).task_id == old_top.task_id


def test_set_filter_resets_and_counts_again(
    qtbot, model: ExecutionHistoryModel, source: SqlitePageSource
) -> None:
    resets: list[int] = []
    model.modelReset.connect(lambda: resets.append(1))
    with qtbot.waitSignal(model.count_changed, timeout=10_000) as counted:
        model.set_filter({"status": "FAILURE"})
    assert resets == [1]
    # Copied blocks repeat block 0's statuses, so ask the store for the truth.
    expected = source._executor.submit(
        lambda: Execution.select().where(Execution.status == "FAILURE").count()
    ).result()
    assert expected > 10_000
    assert counted.args == [expected]
    assert model.rowCount() == counted.args[0]
    record = _load(qtbot, model, 0)
    assert record.status is ExecStatus.FAILURE
    assert model.index(0, model.ERROR).data() == "device_lost"
    assert model.index(0, model.ERROR).data(Qt.ItemDataRole.ToolTipRole).startswith("device_lost")
    assert [c for c in source.calls if c[0] == "count"] == [
        ("count", None), ("count", {"status": "FAILURE"})
    ]


def test_status_cell_is_coloured_from_the_palette(
    qtbot, qapp: QApplication, model: ExecutionHistoryModel, themed
) -> None:
    for mode in ("light", "dark"):
        themed(mode)
        record = _load(qtbot, model, 0)
        colour = model.index(0, model.STATUS).data(Qt.ItemDataRole.ForegroundRole)
        assert colour == status_colors(qapp.palette())[record.status.value]


def test_a_failing_source_reports_once_and_does_not_retry_in_a_loop(qtbot) -> None:
    class Broken:
        def __init__(self) -> None:
            self.windows = 0

        def count(self, filter: Any) -> Future[int]:  # noqa: A002
            done: Future[int] = Future()
            done.set_result(1000)
            return done

        def window(self, filter: Any, offset: int, limit: int) -> Future[list[ExecutionRecord]]:  # noqa: A002
            self.windows += 1
            failed: Future[list[ExecutionRecord]] = Future()
            failed.set_exception(peewee.OperationalError("database is locked"))
            return failed

    broken = Broken()
    model = ExecutionHistoryModel(broken)
    qtbot.waitUntil(lambda: model.rowCount() == 1000)
    asked = broken.windows  # the first page, asked for before the count
    with qtbot.waitSignal(model.load_failed) as failed:
        model.index(505, 0).data()
    assert "database is locked" in failed.args[0]
    for _ in range(5):
        model.index(506, 0).data()
    assert broken.windows == asked + 1


def test_table_view_over_a_windowed_model_scrolls_to_the_end_quickly(
    qtbot, model: ExecutionHistoryModel, source: SqlitePageSource
) -> None:
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    configure_view(view)
    view.resize(1000, 500)
    started = time.perf_counter()
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: model.is_loaded(0), timeout=10_000)
    first_paint = time.perf_counter() - started
    started = time.perf_counter()
    view.scrollToBottom()
    qtbot.waitUntil(lambda: model.is_loaded(TOTAL - 1), timeout=10_000)
    to_end = time.perf_counter() - started
    # Only the first and last pages were ever read, never the rows in between.
    offsets = sorted({c[2] for c in source.windows()})
    assert offsets[0] == 0 and offsets[-1] == 99_800 and len(offsets) <= 3
    assert view.rowAt(view.viewport().height() - 2) == TOTAL - 1
    assert model.index(TOTAL - 1, model.TASK_NAME).data() == "capture_0"
    assert first_paint < 2.0 and to_end < 2.0, (first_paint, to_end)


def test_page_cache_and_formatting_helpers() -> None:
    cache: PageCache[int] = PageCache(page_size=10, max_pages=2)
    cache.put(0, list(range(10)))
    cache.put(1, list(range(10, 15)))
    assert cache.get(12) == 12 and cache.get(17) is None  # short last page
    assert cache.put(2, [20]) == [0]
    assert cache.pages() == [1, 2]
    with pytest.raises(ValueError):
        PageCache(0, 1)
    assert [format_duration(s) for s in (None, 0.25, 12.34, 245, 7380)] == [
        "\u2014", "250 ms", "12.3 s", "4m 05s", "2h 03m"
    ]
