"""Reading the execution history: filtered pages, windows, counts, stats, series.

Order is always newest first: ``created_at`` descending, then ``id``
descending. Every filter column has an index beginning with it and ending
with ``created_at`` (see ``Execution`` in models.py), so a filtered page is an
index range read backwards from the cursor: a few milliseconds even over
millions of rows. Text search (``task_name``/``task_id`` contains,
case-insensitive) cannot use an index and scans newest-first until the page
is full.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import peewee

from app.core import clock
from app.core.enums import ExecStatus
from app.core.errors import ValidationError
from app.core.history import Cursor, ExecutionFilter, Page
from app.core.records import ExecutionRecord
from app.store.dialect import bucket_index
from app.store.executions import execution_record
from app.store.models import Execution
from app.store.rows import dicts, tuples

MAX_PAGE = 1000
MAX_BUCKETS = 10_000
GRANULARITY_SECONDS = {"hour": 3600, "day": 86400}
STAT_KEYS = ("total", "pending", "started", "success", "failure", "retry", "revoked")


def filter_conditions(f: ExecutionFilter) -> list[Any]:
    """The filter as peewee conditions (AND-ed)."""
    conditions: list[Any] = []
    for column, value in (
        (Execution.module, f.module),
        (Execution.task_name, f.task_name),
        (Execution.device_serial, f.device_serial),
        (Execution.agent_uuid, f.agent_uuid),
        (Execution.created_by, f.created_by),
    ):
        if value is not None:
            conditions.append(column == value)
    if f.statuses:
        values = [s.value for s in f.statuses]
        conditions.append(Execution.status == values[0] if len(values) == 1
                          else Execution.status.in_(values))
    if f.since is not None:
        conditions.append(Execution.created_at >= f.since)
    if f.until is not None:
        conditions.append(Execution.created_at < f.until)
    if f.text:
        conditions.append(Execution.task_name.contains(f.text)
                          | Execution.task_id.contains(f.text))
    return conditions


def query_executions(f: ExecutionFilter, *, limit: int = 50,
                     before: Cursor | None = None) -> Page:
    """One page, newest first; pass ``page.next_cursor`` as ``before`` for the next."""
    _check_limit(limit)
    conditions = filter_conditions(f)
    if before is not None:
        created, ident = _check_cursor(before)
        # The first condition bounds the index range; the second breaks ties.
        conditions.append(Execution.created_at <= created)
        conditions.append((Execution.created_at < created) | (Execution.id < ident))
    rows = dicts(_newest_first(conditions).limit(limit + 1))
    items = tuple(execution_record(row) for row in rows[:limit])
    cursor = (items[-1].created_at, items[-1].id) if len(rows) > limit else None
    return Page(items=items, next_cursor=cursor)


def count_executions(f: ExecutionFilter) -> int:
    query = Execution.select(peewee.fn.COUNT(Execution.id))
    conditions = filter_conditions(f)
    if conditions:
        query = query.where(*conditions)
    return int(query.scalar() or 0)


def execution_window(f: ExecutionFilter, offset: int, limit: int,
                     total: int | None = None) -> list[ExecutionRecord]:
    """Rows ``[offset, offset + limit)`` of the newest-first order (a GUI window).

    Past the middle the rows are read from the oldest end, so jumping to the
    end of a million rows costs the same as the top. ``total`` (the filter's
    count, if the caller knows it) saves a COUNT.
    """
    _check_limit(limit)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationError("offset must be a non-negative integer", field="offset")
    conditions = filter_conditions(f)
    if offset == 0 and total is None:  # the top needs no count (a first page, at once)
        return [execution_record(row) for row in dicts(_newest_first(conditions).limit(limit))]
    size = count_executions(f) if total is None else total
    end = min(offset + limit, size)
    if offset >= end:
        return []
    if offset <= size - end:
        query = _newest_first(conditions).offset(offset).limit(end - offset)
        return [execution_record(row) for row in dicts(query)]
    query = _select(conditions).order_by(Execution.created_at, Execution.id)
    rows = dicts(query.offset(size - end).limit(end - offset))
    return [execution_record(row) for row in reversed(rows)]


def oldest_executions(f: ExecutionFilter, limit: int) -> list[ExecutionRecord]:
    """The ``limit`` oldest executions matching ``f``, oldest first."""
    _check_limit(limit)
    query = _select(filter_conditions(f)).order_by(Execution.created_at, Execution.id)
    return [execution_record(row) for row in dicts(query.limit(limit))]


def execution_stats(f: ExecutionFilter) -> dict[str, Any]:
    """Totals per status, overall and by module and task name (reference 001 shape):
    ``{"total", "pending", ..., "revoked", "by_module": {m: {...}}, "by_task_name": {...}}``.
    """
    query = Execution.select(Execution.module, Execution.task_name, Execution.status,
                             peewee.fn.COUNT(Execution.id))
    conditions = filter_conditions(f)
    if conditions:
        query = query.where(*conditions)
    query = query.group_by(Execution.module, Execution.task_name, Execution.status)
    overall = _zero_stats()
    by_module: dict[str, dict[str, int]] = {}
    by_task: dict[str, dict[str, int]] = {}
    for module, task_name, status, n in tuples(query):
        key = str(status).lower()
        for stats in (overall, by_module.setdefault(module, _zero_stats()),
                      by_task.setdefault(task_name, _zero_stats())):
            stats["total"] += int(n)
            if key in stats:
                stats[key] += int(n)
    return {**overall, "by_module": by_module, "by_task_name": by_task}


def execution_series(f: ExecutionFilter, *, granularity: Literal["hour", "day"],
                     since: float, until: float) -> list[dict[str, Any]]:
    """Zero-filled buckets of executions created in ``[since, until)`` (UTC-aligned):
    ``[{"bucket": iso, "start": ts, "total": n, "SUCCESS": n, "FAILURE": n, ...}]``.
    """
    if granularity not in GRANULARITY_SECONDS:
        raise ValidationError("granularity must be hour or day", field="granularity")
    if not (math.isfinite(since) and math.isfinite(until)) or since >= until:
        raise ValidationError("since must be before until", field="since")
    size = GRANULARITY_SECONDS[granularity]
    origin = math.floor(since / size) * size
    count = math.ceil((until - origin) / size)
    if count > MAX_BUCKETS:
        raise ValidationError(f"too many buckets ({count}); the limit is {MAX_BUCKETS}",
                              field="granularity")
    buckets = [_zero_bucket(origin + i * size) for i in range(count)]
    lower = max(since, f.since) if f.since is not None else since
    upper = min(until, f.until) if f.until is not None else until
    if lower >= upper:
        return buckets
    conditions = filter_conditions(f) + [Execution.created_at >= lower,
                                         Execution.created_at < upper]
    index = bucket_index(Execution.created_at, origin, size).alias("bucket")
    query = (
        Execution.select(index, Execution.status, peewee.fn.COUNT(Execution.id))
        .where(*conditions)
        .group_by(peewee.SQL("bucket"), Execution.status)
    )
    for position, status, n in tuples(query):
        if 0 <= int(position) < count:
            buckets[int(position)][str(status)] += int(n)
            buckets[int(position)]["total"] += int(n)
    return buckets


# -- internals -------------------------------------------------------------------------
def _select(conditions: list[Any]) -> Any:
    query = Execution.select()
    return query.where(*conditions) if conditions else query


def _newest_first(conditions: list[Any]) -> Any:
    return _select(conditions).order_by(Execution.created_at.desc(), Execution.id.desc())


def _zero_stats() -> dict[str, int]:
    return dict.fromkeys(STAT_KEYS, 0)


def _zero_bucket(start: float) -> dict[str, Any]:
    bucket: dict[str, Any] = {"bucket": clock.iso(start), "start": start, "total": 0}
    bucket.update({status.value: 0 for status in ExecStatus})
    return bucket


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit must be from 1 to {MAX_PAGE}", field="limit")


def _check_cursor(cursor: Cursor) -> Cursor:
    try:
        created, ident = cursor
        return float(created), int(ident)
    except (TypeError, ValueError):
        raise ValidationError(f"invalid cursor {cursor!r}", field="cursor") from None
