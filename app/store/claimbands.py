"""Candidate tasks for the claim, read as ordered *bands*.

A band is the eligible pending tasks of one target group (``any``,
``selector``, ``host``, one device serial, or one agent uuid), one priority,
and one retry flag (retries vs fresh work), oldest first — exactly the order
``dispatch_key`` uses inside such a group. Each band is served by one of the
task indexes ``(state, target_kind[, target_value], priority, attempts,
created_at)``, so a page costs an index range read, never a sort of every
pending task. Pages are fetched only when a slot's turn reaches the band, and
bands are shared between the slots of one claim.

This is the hottest query of the engine (several times a second per
workstation), so its SQL is written once per shape and cached: building it
with peewee each time cost ~1 ms per query, more than running it. The SQL is
plain and portable; only the parameter placeholder differs by backend.
"""

from __future__ import annotations

import functools
from typing import Any

import peewee

from app.core.enums import TargetKind, TaskState
from app.store.taskrows import TASK_COLUMNS, TASK_TABLE, Row, read_task_rows

IN_CHUNK = 500


class Band:
    """One band, materialised page by page (keyset on created_at, id)."""

    def __init__(self, finder: Finder, kind: TargetKind, value: str | None, priority: int,
                 retry: bool) -> None:
        self._finder = finder
        self._kind, self._value, self._priority, self._retry = kind, value, priority, retry
        self._page = finder.first_page
        self.rows: list[Row] = []
        self.done = False

    def get(self, index: int) -> Row | None:
        while index >= len(self.rows) and not self.done:
            self._fetch()
        return self.rows[index] if index < len(self.rows) else None

    def _fetch(self) -> None:
        after = (self.rows[-1]["created_at"], self.rows[-1]["id"]) if self.rows else None
        page = self._finder.fetch(self._kind, self._value, self._priority, self._retry,
                                  after, self._page)
        self.rows.extend(page)
        if len(page) < self._page:
            self.done = True
        self._page = min(self._page * 2, 2000)


class Merged:
    """Bands merged by (created_at, id), materialised as it is read."""

    def __init__(self, parts: list[Band]) -> None:
        self._parts = parts
        self._pos = [0] * len(parts)
        self.rows: list[Row] = []

    def get(self, index: int) -> Row | None:
        while index >= len(self.rows):
            best: int | None = None
            best_row: Row | None = None
            for i, part in enumerate(self._parts):
                row = part.get(self._pos[i])
                if row is not None and (
                    best_row is None
                    or (row["created_at"], row["id"]) < (best_row["created_at"], best_row["id"])
                ):
                    best, best_row = i, row
            if best is None or best_row is None:
                return None
            self._pos[best] += 1
            self.rows.append(best_row)
        return self.rows[index]


class Finder:
    """Creates and caches the bands of one claim; runs their queries."""

    def __init__(self, db: peewee.Database, at: float, blocked: list[str],
                 kinds: list[str] | None, demand: int) -> None:
        self._db = db
        self._at = at
        self._blocked = blocked
        self._kinds = kinds
        # A page the size of the demand: with most candidates eligible (the common case)
        # a claim reads no row it does not take; pages double when more are needed.
        self.first_page = max(8, min(demand, 500))
        self._bands: dict[tuple[Any, ...], Band] = {}
        self._merged: dict[tuple[int, bool], Merged] = {}
        self._targeted: set[tuple[str, str, int, bool]] = set()

    def close(self) -> None:
        """Drop the bands (each refers back to this finder): no cycle is left for the
        garbage collector, which would otherwise walk them on whichever thread."""
        self._bands.clear()
        self._merged.clear()

    def index_targets(self, kind: TargetKind, values: list[str]) -> None:
        """Learn which devices/agents have targeted pending work, at which priority and
        retry flag, so a claim for many devices queries no empty per-device band.
        (An index-only read of the targeted part of the pending tasks.)"""
        for start in range(0, len(values), IN_CHUNK):
            chunk = values[start:start + IN_CHUNK]
            cursor = self._db.execute_sql(  # type: ignore[no-untyped-call]
                _targets_sql(self._db.param, len(chunk)),
                [TaskState.PENDING.value, kind.value, *chunk])
            for value, priority, is_retry in cursor.fetchall():
                self._targeted.add((kind.value, value, int(priority), bool(is_retry)))

    def targeted(self, kind: TargetKind, value: str, priority: int) -> list[Band]:
        """The bands of tasks targeted at this device/agent (only non-empty ones)."""
        return [self.band(kind, value, priority, retry) for retry in (True, False)
                if (kind.value, value, priority, retry) in self._targeted]

    def band(self, kind: TargetKind, value: str | None, priority: int, retry: bool) -> Band:
        key = (kind, value, priority, retry)
        band = self._bands.get(key)
        if band is None:
            band = self._bands[key] = Band(self, kind, value, priority, retry)
        return band

    def untargeted(self, priority: int, retry: bool) -> Merged:
        """Tasks any device may take (``any``) merged with selector tasks."""
        merged = self._merged.get((priority, retry))
        if merged is None:
            merged = self._merged[(priority, retry)] = Merged([
                self.band(TargetKind.ANY, None, priority, retry),
                self.band(TargetKind.SELECTOR, None, priority, retry),
            ])
        return merged

    def fetch(self, kind: TargetKind, value: str | None, priority: int, retry: bool,
              after: tuple[float, int] | None, size: int) -> list[Row]:
        sql, params = self.band_sql(kind, value, priority, retry, after, size)
        return read_task_rows(self._db, sql, params)

    def band_sql(self, kind: TargetKind, value: str | None, priority: int, retry: bool,
                 after: tuple[float, int] | None, size: int) -> tuple[str, list[Any]]:
        """SQL and parameters of one page of a band (a test checks its query plan)."""
        params: list[Any] = [TaskState.PENDING.value, kind.value]
        if value is not None:
            params.append(value)
        params += [priority, False, self._at]
        params += self._blocked
        params += self._kinds or []
        if after is not None:
            params += [after[0], after[0], after[1]]
        params.append(size)
        shape = (value is not None, retry, len(self._blocked),
                 None if self._kinds is None else len(self._kinds), after is not None)
        return _sql_for(self._db, shape), params


_SQL_CACHE: dict[tuple[Any, ...], str] = {}


@functools.lru_cache(maxsize=64)
def _targets_sql(p: str, n: int) -> str:
    """Which (target, priority, retry) bands hold pending work, for ``n`` targets."""
    return ('SELECT DISTINCT "target_value", "priority", '
            'CASE WHEN "attempts" > 0 THEN 1 ELSE 0 END '
            f'FROM {TASK_TABLE} WHERE "state" = {p} AND "target_kind" = {p} '
            f'AND "target_value" IN ({", ".join([p] * n)})')


def _sql_for(db: peewee.Database, shape: tuple[Any, ...]) -> str:
    key = (type(db).__name__, db.param, *shape)
    sql = _SQL_CACHE.get(key)
    if sql is None:
        sql = _SQL_CACHE[key] = _build_sql(db.param, *shape)
    return sql


def _build_sql(p: str, has_value: bool, retry: bool, n_blocked: int, n_kinds: int | None,
               has_after: bool) -> str:
    def q(name: str) -> str:
        return f'"{name}"'

    where = [f"{q('state')} = {p}", f"{q('target_kind')} = {p}"]
    if has_value:
        where.append(f"{q('target_value')} = {p}")
    where += [
        f"{q('priority')} = {p}",
        f"{q('attempts')} > 0" if retry else f"{q('attempts')} = 0",
        f"{q('cancel_requested')} = {p}",
        f"({q('not_before')} IS NULL OR {q('not_before')} <= {p})",
    ]
    if n_blocked:
        where.append(f"{q('queue')} NOT IN ({', '.join([p] * n_blocked)})")
    if n_kinds is not None:
        where.append(f"{q('kind')} IN ({', '.join([p] * n_kinds)})" if n_kinds else "1 = 0")
    if has_after:
        # The first bounds the index range; the second breaks ties on created_at.
        where.append(f"{q('created_at')} >= {p}")
        where.append(f"({q('created_at')} > {p} OR {q('id')} > {p})")
    return (f"SELECT {TASK_COLUMNS} FROM {TASK_TABLE} WHERE {' AND '.join(where)} "
            f"ORDER BY {q('created_at')}, {q('id')} LIMIT {p}")
