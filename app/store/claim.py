"""The claim: hand eligible pending tasks to free slots, atomically, in dispatch order.

A *slot* is a free device (with its tags and model), the console host, or a
remote agent, with a capacity (how many tasks it may take now). ``claim`` runs
in one transaction and gives each task to at most one slot:

- slots take turns (round-robin), each taking its best remaining task in the
  order of ``app.core.ordering.dispatch_key`` until it is full or nothing it
  may run is left — so work spreads over the free devices;
- eligible means: pending, no cancel requested, ``not_before`` passed, queue
  not paused, queue below its concurrency limit (counting the tasks this very
  claim hands out), kind allowed, target matching the slot.

Efficiency (10,000+ pending tasks): candidates are never sorted as a whole.
They are read as *bands* — (target group, priority, retry-or-fresh) — each
already ordered by (created_at, id) through an index, a page at a time and
only when a slot's turn reaches that band, then merged in Python. Bands are
shared between slots. With idle devices and plenty of work this touches a
few dozen index entries per claimed task.

Concurrency: on SQLite the transaction holds the writer lock from its start
(``BEGIN IMMEDIATE``). On PostgreSQL candidates are read without locks, then
only the picked rows are locked with ``FOR UPDATE SKIP LOCKED``; picks another
workstation holds are dropped and the assignment is redone without them (a
few rounds at most). Limited queues' rows are locked too, so two workstations
never take the same task or overrun a queue's limit. The final UPDATE
re-checks ``state = 'pending'`` as a last guard.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import peewee

from app.core.enums import Priority, TargetKind, TaskState
from app.core.errors import ConflictError, ValidationError
from app.core.records import TaskRecord
from app.store.dialect import for_update, skip_locked, write_transaction
from app.store.models import Queue, Task
from app.store.rows import column, dicts, tuples
from app.store.taskrows import check_lease, check_owner, stored_target, task_record, when

HOST_KEY = "host"
MAX_SLOT_CAPACITY = 1000
_PRIORITIES = sorted((int(p) for p in Priority), reverse=True)
_IN_CHUNK = 500
_LOCK_ROUNDS = 4  # re-picks when another workstation took some of our picks first

Row = dict[str, Any]


@dataclass(frozen=True)
class Slot:
    """A free place to run tasks: a device (``serial``), the host, or an agent."""

    serial: str | None
    tags: tuple[str, ...] = ()
    model: str | None = None
    host: bool = False
    agent_uuid: str | None = None
    capacity: int = 1

    @property
    def key(self) -> str:
        """The key of this slot in ``claim``'s result: serial, ``"host"`` or agent uuid."""
        if self.host:
            return HOST_KEY
        if self.agent_uuid is not None:
            return self.agent_uuid
        return self.serial or ""

    @property
    def is_device(self) -> bool:
        return not self.host and self.agent_uuid is None


def claim(
    owner: str,
    slots: Sequence[Slot],
    *,
    lease_s: float,
    now: float | None = None,
    kinds: Collection[str] | None = None,
) -> dict[str | None, list[TaskRecord]]:
    """Claim tasks for ``slots`` under a lease held by ``owner``.

    Returns:
        slot key -> the tasks it got, in dispatch order (slots that got nothing
        are absent). Each task is ``claimed`` with ``lease_owner=owner``,
        ``lease_expires_at=now+lease_s`` and the slot's device/agent set.

    Raises:
        ValidationError: bad owner, lease, or slots (nothing is claimed).
    """
    check_owner(owner)
    lease = check_lease(lease_s)
    _check_slots(slots)
    at = when(now)
    wanted = [s for s in slots if s.capacity > 0]
    allowed_kinds = sorted(set(kinds)) if kinds is not None else None
    if not wanted or allowed_kinds == []:
        return {}
    lost: set[int] = set()
    with write_transaction():
        for attempt in range(_LOCK_ROUNDS):
            gate = _QueueGate(at)
            finder = _Finder(at, gate.blocked, allowed_kinds, sum(s.capacity for s in wanted))
            finder.index_targets(wanted)
            picks = _assign(wanted, finder, gate, exclude=lost)
            newly_lost = _lock_picks(picks)
            if not newly_lost:
                break
            lost |= newly_lost
            if attempt == _LOCK_ROUNDS - 1:  # give up on those; claim the rest
                picks = {key: [r for r in rows if r["id"] not in lost]
                         for key, rows in picks.items()}
        return _mark_claimed(picks, wanted, owner, at, at + lease)


# -- assignment --------------------------------------------------------------------------
def _assign(slots: list[Slot], finder: _Finder, gate: _QueueGate, *,
            exclude: set[int]) -> dict[str, list[Row]]:
    """Round-robin: each slot in turn takes its best remaining eligible task."""
    streams = {slot.key: _slot_candidates(slot, finder) for slot in slots}
    remaining = {slot.key: slot.capacity for slot in slots}
    picks: dict[str, list[Row]] = {}
    taken: set[int] = set(exclude)
    active = list(slots)
    while active:
        still: list[Slot] = []
        for slot in active:
            row = _next_eligible(slot, streams[slot.key], taken, gate)
            if row is None:
                continue  # nothing left this slot may run
            taken.add(row["id"])
            gate.take(row["queue"])
            picks.setdefault(slot.key, []).append(row)
            remaining[slot.key] -= 1
            if remaining[slot.key] > 0:
                still.append(slot)
        active = still
    return picks


def _next_eligible(slot: Slot, stream: Iterator[Row], taken: set[int],
                   gate: _QueueGate) -> Row | None:
    for row in stream:
        if row["id"] in taken or not gate.allows(row["queue"]):
            continue
        if row["target_kind"] == TargetKind.SELECTOR.value:
            target = stored_target(row["target_kind"], row["target_value"])
            if not target.matches_device(slot.serial or "", slot.tags, slot.model):
                continue
        return row
    return None


def _slot_candidates(slot: Slot, finder: _Finder) -> Iterator[Row]:
    """Every task this slot might run, in its dispatch order (lazily fetched)."""
    for priority in _PRIORITIES:
        bands: list[_Band | _Merged] = []
        if slot.host:
            bands = [finder.band(TargetKind.HOST, None, priority, retry) for retry in (1, 0)]
        elif slot.agent_uuid is not None:
            if finder.has_targeted(TargetKind.AGENT, slot.agent_uuid, priority):
                bands = [finder.band(TargetKind.AGENT, slot.agent_uuid, priority, retry)
                         for retry in (1, 0)]
        else:
            if finder.has_targeted(TargetKind.DEVICE, slot.serial, priority):
                bands = [finder.band(TargetKind.DEVICE, slot.serial, priority, retry)
                         for retry in (1, 0)]
            bands += [finder.untargeted(priority, retry) for retry in (1, 0)]
        for band in bands:
            index = 0
            while (row := band.get(index)) is not None:
                index += 1
                yield row


# -- candidate bands ---------------------------------------------------------------------
class _Band:
    """Eligible pending tasks of one target group, priority and retry flag, oldest
    first, fetched a page at a time (keyset on created_at, id)."""

    def __init__(self, finder: _Finder, kind: TargetKind, value: str | None, priority: int,
                 retry: int) -> None:
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


class _Merged:
    """Two or more bands merged by (created_at, id), materialised as it is read."""

    def __init__(self, parts: list[_Band]) -> None:
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


class _Finder:
    """Builds and caches the bands of one claim."""

    def __init__(self, at: float, blocked: list[str], kinds: list[str] | None,
                 demand: int) -> None:
        self._at = at
        self._blocked = blocked
        self._kinds = kinds
        self.first_page = max(8, min(2 * demand, 500))
        self._bands: dict[tuple[Any, ...], _Band] = {}
        self._merged: dict[tuple[int, int], _Merged] = {}
        self._targeted: set[tuple[str, str, int]] = set()

    def index_targets(self, slots: list[Slot]) -> None:
        """Learn which devices/agents have targeted pending work at which priority,
        so a claim for many devices does not query an empty band per device."""
        for kind, values in (
            (TargetKind.DEVICE, [s.serial for s in slots if s.is_device and s.serial]),
            (TargetKind.AGENT, [s.agent_uuid for s in slots if s.agent_uuid]),
        ):
            for start in range(0, len(values), _IN_CHUNK):
                chunk = values[start:start + _IN_CHUNK]
                query = (
                    Task.select(Task.target_value, Task.priority)
                    .where(Task.state == TaskState.PENDING.value,
                           Task.target_kind == kind.value, Task.target_value.in_(chunk))
                    .distinct()
                )
                for value, priority in tuples(query):
                    self._targeted.add((kind.value, value, int(priority)))

    def has_targeted(self, kind: TargetKind, value: str | None, priority: int) -> bool:
        return (kind.value, value or "", priority) in self._targeted

    def band(self, kind: TargetKind, value: str | None, priority: int, retry: int) -> _Band:
        key = (kind, value, priority, retry)
        band = self._bands.get(key)
        if band is None:
            band = self._bands[key] = _Band(self, kind, value, priority, retry)
        return band

    def untargeted(self, priority: int, retry: int) -> _Merged:
        """Tasks any device may take (``any``) merged with selector tasks."""
        merged = self._merged.get((priority, retry))
        if merged is None:
            merged = self._merged[(priority, retry)] = _Merged([
                self.band(TargetKind.ANY, None, priority, retry),
                self.band(TargetKind.SELECTOR, None, priority, retry),
            ])
        return merged

    def fetch(self, kind: TargetKind, value: str | None, priority: int, retry: int,
              after: tuple[float, int] | None, size: int) -> list[Row]:
        return dicts(self.band_query(kind, value, priority, retry, after, size))

    def band_query(self, kind: TargetKind, value: str | None, priority: int, retry: int,
                   after: tuple[float, int] | None, size: int) -> peewee.ModelSelect[Task]:
        """One page of a band (also used by a test that checks the query plan)."""
        conditions = [
            Task.state == TaskState.PENDING.value,
            Task.target_kind == kind.value,
            Task.priority == priority,
            (Task.attempts > 0) if retry else (Task.attempts == 0),
            Task.cancel_requested == False,  # noqa: E712 - SQL comparison
            Task.not_before.is_null() | (Task.not_before <= self._at),
        ]
        if value is not None:
            conditions.append(Task.target_value == value)
        if self._blocked:
            conditions.append(Task.queue.not_in(self._blocked))
        if self._kinds is not None:
            conditions.append(Task.kind.in_(self._kinds))
        if after is not None:
            created, ident = after
            conditions.append(Task.created_at >= created)
            conditions.append((Task.created_at > created) | (Task.id > ident))
        return Task.select().where(*conditions).order_by(Task.created_at, Task.id).limit(size)


class _QueueGate:
    """Paused queues and how many more tasks each limited queue may take."""

    def __init__(self, at: float) -> None:
        query = Queue.select(Queue.name, Queue.paused, Queue.concurrency).where(
            (Queue.paused == True) | (Queue.concurrency > 0)  # noqa: E712
        )
        paused: set[str] = set()
        limits: dict[str, int] = {}
        # Locking the limited queues' rows serialises claims on them between
        # workstations (PostgreSQL), so two claims cannot both fill the last place.
        for name, is_paused, limit in tuples(for_update(query)):
            if is_paused:
                paused.add(name)
            elif limit > 0:
                limits[name] = int(limit)
        self._remaining: dict[str, int] = {}
        if limits:
            active = (
                Task.select(Task.queue, peewee.fn.COUNT(Task.id))
                .where(Task.state.in_([TaskState.CLAIMED.value, TaskState.RUNNING.value]),
                       Task.queue.in_(list(limits)))
                .group_by(Task.queue)
            )
            busy = {name: int(n) for name, n in tuples(active)}
            self._remaining = {name: limit - busy.get(name, 0) for name, limit in limits.items()}
        full = {name for name, left in self._remaining.items() if left <= 0}
        self.blocked = sorted(paused | full)

    def allows(self, queue: str) -> bool:
        return self._remaining.get(queue, 1) > 0

    def take(self, queue: str) -> None:
        if queue in self._remaining:
            self._remaining[queue] -= 1


# -- writing -----------------------------------------------------------------------------
def _lock_picks(picks: dict[str, list[Row]]) -> set[int]:
    """Lock the picked rows that are still pending; return the ids we could not get.

    Candidates are read without locks, so only the tasks really taken are locked
    (a workstation never blocks others on rows it merely looked at). On
    PostgreSQL a row another claim holds is skipped and reported lost; on
    SQLite the writer lock makes every pick ours.
    """
    wanted = [row["id"] for rows in picks.values() for row in rows]
    got: set[int] = set()
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start:start + _IN_CHUNK]
        query = Task.select(Task.id).where(Task.id.in_(chunk),
                                           Task.state == TaskState.PENDING.value)
        got.update(column(skip_locked(query)))
    return set(wanted) - got


def _mark_claimed(picks: dict[str, list[Row]], slots: list[Slot], owner: str, at: float,
                  expires: float) -> dict[str | None, list[TaskRecord]]:
    by_key = {slot.key: slot for slot in slots}
    out: dict[str | None, list[TaskRecord]] = {}
    for key, rows in picks.items():
        slot = by_key[key]
        serial = slot.serial if slot.is_device else None
        ids = [row["id"] for row in rows]
        changes: dict[Any, Any] = {
            Task.state: TaskState.CLAIMED.value,
            Task.lease_owner: owner,
            Task.lease_expires_at: expires,
            Task.device_serial: serial,
            Task.agent_uuid: slot.agent_uuid,
            Task.updated_at: at,
        }
        changed = (
            Task.update(changes)
            .where(Task.id.in_(ids), Task.state == TaskState.PENDING.value)
            .execute()
        )
        if changed != len(ids):
            # Cannot happen under the locks above; refuse rather than double-claim.
            raise ConflictError("another claim took some of these tasks; try again")
        out[key] = [
            replace(task_record(row), state=TaskState.CLAIMED, lease_owner=owner,
                    lease_expires_at=expires, device_serial=serial,
                    agent_uuid=slot.agent_uuid, updated_at=at)
            for row in rows
        ]
    return out


def _check_slots(slots: Sequence[Slot]) -> None:
    seen: set[str] = set()
    for slot in slots:
        if not isinstance(slot, Slot):
            raise ValidationError("slots must be Slot objects", field="slots")
        kinds = int(slot.host) + int(slot.agent_uuid is not None) + int(
            slot.serial is not None)
        if kinds != 1:
            raise ValidationError(
                "a slot is exactly one of: a device serial, the host, or an agent",
                field="slots")
        if slot.serial is not None and (not isinstance(slot.serial, str) or not slot.serial):
            raise ValidationError("a device slot needs a serial", field="slots")
        if (
            isinstance(slot.capacity, bool)
            or not isinstance(slot.capacity, int)
            or not 0 <= slot.capacity <= MAX_SLOT_CAPACITY
        ):
            raise ValidationError(
                f"slot capacity must be an integer from 0 to {MAX_SLOT_CAPACITY}",
                field="slots")
        if slot.key in seen:
            raise ValidationError(f"slot {slot.key!r} is listed twice", field="slots")
        seen.add(slot.key)
