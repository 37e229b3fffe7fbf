"""Parsing history filters from query strings (reference 001 parameter names)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.core.enums import ExecStatus
from app.core.errors import ValidationError
from app.core.history import ExecutionFilter, decode_cursor, encode_cursor, parse_statuses


def _ts(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()


def test_reference_names_map_to_fields() -> None:
    f = ExecutionFilter.from_query({
        "module": "lab", "task_name": "adb.shell", "status": "success, FAILURE,success",
        "device": "S1", "agent": "agent-1", "created_by": "ana", "search": "inst",
        "page": "3", "page_size": "50", "include_metadata": "false",  # not filters: ignored
    })
    assert f == ExecutionFilter(module="lab", task_name="adb.shell",
                                statuses=(ExecStatus.SUCCESS, ExecStatus.FAILURE),
                                device_serial="S1", agent_uuid="agent-1", created_by="ana",
                                text="inst")


def test_date_only_bounds_cover_whole_utc_days() -> None:
    f = ExecutionFilter.from_query({"start_date": "2024-05-01", "end_date": "2024-05-01"})
    assert (f.since, f.until) == (_ts(2024, 5, 1), _ts(2024, 5, 2))
    g = ExecutionFilter.from_query({"start_date": "2024-05-01T10:30:00Z",
                                    "end_date": "2024-05-03T00:00:00+02:00"})
    assert (g.since, g.until) == (_ts(2024, 5, 1, 10, 30), _ts(2024, 5, 2, 22))


def test_empty_values_mean_no_condition() -> None:
    assert ExecutionFilter.from_query({"module": "", "status": " ", "search": ""}).is_empty
    assert ExecutionFilter.from_query({}).is_empty


@pytest.mark.parametrize(
    "query",
    [{"status": "DONE"}, {"start_date": "2024-13-01"}, {"end_date": "yesterday"},
     {"start_date": "2024-05-02", "end_date": "2024-05-01"}, {"search": "x" * 201}],
)
def test_bad_values_are_refused(query: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        ExecutionFilter.from_query(query)


def test_to_query_round_trips() -> None:
    f = ExecutionFilter(module="lab", statuses=(ExecStatus.RETRY,), device_serial="S1",
                        since=1_700_000_000.25, until=1_700_086_400.0, text="x")
    assert ExecutionFilter.from_query(f.to_query()) == f


def test_statuses_and_cursors_parse() -> None:
    assert parse_statuses("revoked,,Started") == (ExecStatus.REVOKED, ExecStatus.STARTED)
    cursor = (1_700_000_000.123456, 42)
    assert decode_cursor(encode_cursor(cursor)) == cursor
    for bad in ("", "abc", "1.5", "x:1"):
        with pytest.raises(ValidationError):
            decode_cursor(bad)
