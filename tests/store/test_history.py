"""Reading the history: filters, keyset pages, windows, counts, stats, series."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import peewee
import pytest

from app.core.enums import ExecStatus
from app.core.errors import ValidationError
from app.core.history import ExecutionFilter
from app.core.records import ExecutionRecord
from app.store import history
from app.store.models import Execution
from tests.store.helpers import T0

MODULES = ("default", "lab", "system")
NAMES = ("adb.shell", "adb.install", "agent.http_ping")
DEVICES = ("S1", "S2", None)
STATUSES = list(ExecStatus)


@pytest.fixture
def rows(store: peewee.Database) -> list[dict]:
    """300 executions over ~3 days with many equal created_at values (ties by id)."""
    rng = random.Random(11)
    data = []
    for i in range(300):
        data.append({
            "task_id": f"task-{i:04d}", "task_name": rng.choice(NAMES),
            "module": rng.choice(MODULES), "status": rng.choice(STATUSES).value,
            "attempt": 1, "device_serial": rng.choice(DEVICES),
            "agent_uuid": "agent-1" if i % 10 == 0 else None,
            "created_by": rng.choice(["ana", "bob", "system"]),
            "created_at": T0 + rng.randint(0, 72) * 3600.0, "metadata": {"i": i},
        })
    with Execution._meta.database.atomic():
        Execution.insert_many(data).execute()
    return data


def _newest_first(data: list[dict], f: ExecutionFilter) -> list[str]:
    def keep(r: dict) -> bool:
        return ((f.module is None or r["module"] == f.module)
                and (f.task_name is None or r["task_name"] == f.task_name)
                and (not f.statuses or r["status"] in {s.value for s in f.statuses})
                and (f.device_serial is None or r["device_serial"] == f.device_serial)
                and (f.agent_uuid is None or r["agent_uuid"] == f.agent_uuid)
                and (f.created_by is None or r["created_by"] == f.created_by)
                and (f.since is None or r["created_at"] >= f.since)
                and (f.until is None or r["created_at"] < f.until)
                and (not f.text or f.text.lower() in r["task_name"].lower()
                     or f.text.lower() in r["task_id"].lower()))
    ids = {r["task_id"]: n for n, r in enumerate(data, start=1)}  # insertion order = id order
    chosen = [r for r in data if keep(r)]
    chosen.sort(key=lambda r: (r["created_at"], ids[r["task_id"]]), reverse=True)
    return [r["task_id"] for r in chosen]


FILTERS = [
    ExecutionFilter(),
    ExecutionFilter(module="lab"),
    ExecutionFilter(task_name="adb.shell", statuses=(ExecStatus.FAILURE, ExecStatus.SUCCESS)),
    ExecutionFilter(device_serial="S2", created_by="ana"),
    ExecutionFilter(agent_uuid="agent-1"),
    ExecutionFilter(since=T0 + 24 * 3600, until=T0 + 48 * 3600),
    ExecutionFilter(text="INSTALL"),
    ExecutionFilter(text="task-01"),
    ExecutionFilter(module="nothing-here"),
]


@pytest.mark.parametrize("f", FILTERS, ids=[str(i) for i in range(len(FILTERS))])
def test_keyset_pages_are_disjoint_complete_and_newest_first(rows: list[dict],
                                                             f: ExecutionFilter) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        page = history.query_executions(f, limit=7, before=cursor)
        assert len(page.items) <= 7
        seen.extend(r.task_id for r in page.items)
        if page.next_cursor is None:
            break
        assert len(page.items) == 7
        cursor = page.next_cursor
    assert seen == _newest_first(rows, f)
    assert history.count_executions(f) == len(seen)


def test_a_page_holds_full_records(rows: list[dict]) -> None:
    first = history.query_executions(ExecutionFilter(), limit=1).items[0]
    assert isinstance(first, ExecutionRecord) and first.metadata == {"i": int(first.task_id[5:])}


@pytest.mark.parametrize("f", FILTERS[:4], ids=[str(i) for i in range(4)])
def test_windows_from_both_ends_match_the_order(rows: list[dict], f: ExecutionFilter) -> None:
    expected = _newest_first(rows, f)
    total = len(expected)
    for offset in (0, 5, total // 2 - 3, total // 2 + 1, total - 10, total - 1, total, total + 5):
        if offset < 0:
            continue
        window = history.execution_window(f, offset, 10, total=total)
        assert [r.task_id for r in window] == expected[offset:offset + 10]
    assert [r.task_id for r in history.execution_window(f, 0, 3)] == expected[:3]


def test_bad_paging_input_is_refused(rows: list[dict]) -> None:
    f = ExecutionFilter()
    for bad in (0, 1001, True):
        with pytest.raises(ValidationError):
            history.query_executions(f, limit=bad)
    with pytest.raises(ValidationError):
        history.query_executions(f, before=("x", "y"))  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        history.execution_window(f, -1, 10)


def test_stats_have_the_reference_shape_and_add_up(rows: list[dict]) -> None:
    stats = history.execution_stats(ExecutionFilter())
    keys = {"total", "pending", "started", "success", "failure", "retry", "revoked"}
    assert set(stats) == keys | {"by_module", "by_task_name"}
    assert stats["total"] == 300 == sum(stats[k] for k in keys - {"total"})
    assert stats["failure"] == sum(r["status"] == "FAILURE" for r in rows)
    assert set(stats["by_module"]) == set(MODULES) and set(stats["by_task_name"]) == set(NAMES)
    for breakdown in ("by_module", "by_task_name"):
        assert set(stats[breakdown]["lab" if breakdown == "by_module" else "adb.shell"]) == keys
        assert sum(s["total"] for s in stats[breakdown].values()) == 300
    lab = history.execution_stats(ExecutionFilter(module="lab"))
    assert lab["total"] == stats["by_module"]["lab"]["total"]
    assert set(lab["by_module"]) == {"lab"}


@pytest.mark.parametrize("granularity", ["hour", "day"])
def test_series_are_zero_filled_aligned_buckets(rows: list[dict], granularity: str) -> None:
    since, until = T0 - 1800, T0 + 80 * 3600
    series = history.execution_series(ExecutionFilter(), granularity=granularity,  # type: ignore[arg-type]
                                      since=since, until=until)
    size = 3600 if granularity == "hour" else 86400
    assert series[0]["start"] <= since < series[0]["start"] + size
    assert all(b["start"] % size == 0 for b in series)
    assert all(later["start"] - earlier["start"] == size
               for earlier, later in zip(series, series[1:], strict=False))
    assert series[-1]["start"] < until <= series[-1]["start"] + size
    assert sum(b["total"] for b in series) == 300
    for bucket in series:
        assert bucket["total"] == sum(bucket[s.value] for s in ExecStatus)
        start = datetime.fromtimestamp(bucket["start"], tz=UTC)
        assert bucket["bucket"].startswith(start.strftime("%Y-%m-%dT%H:00:00"))
    expected = [sum(1 for r in rows if b["start"] <= r["created_at"] < b["start"] + size)
                for b in series]
    assert [b["total"] for b in series] == expected
    if granularity == "hour":
        assert any(b["total"] == 0 for b in series)  # gaps are present, as zeros


def test_series_respect_the_filter_and_refuse_bad_ranges(rows: list[dict]) -> None:
    failures = history.execution_series(ExecutionFilter(statuses=(ExecStatus.FAILURE,)),
                                        granularity="day", since=T0, until=T0 + 4 * 86400)
    assert sum(b["FAILURE"] for b in failures) == sum(r["status"] == "FAILURE" for r in rows)
    assert sum(b["SUCCESS"] for b in failures) == 0
    clipped = history.execution_series(ExecutionFilter(since=T0 + 10 * 86400),
                                       granularity="day", since=T0, until=T0 + 2 * 86400)
    assert sum(b["total"] for b in clipped) == 0 and len(clipped) >= 2
    with pytest.raises(ValidationError):
        history.execution_series(ExecutionFilter(), granularity="week",  # type: ignore[arg-type]
                                 since=T0, until=T0 + 1)
    with pytest.raises(ValidationError):
        history.execution_series(ExecutionFilter(), granularity="hour", since=T0, until=T0)
    with pytest.raises(ValidationError):
        history.execution_series(ExecutionFilter(), granularity="hour", since=0,
                                 until=T0)  # too many buckets
