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

import functools
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass

import peewee

from app.core.enums import Priority, TargetKind, TaskState
from app.core.errors import ValidationError
from app.core.records import TaskRecord
from app.store.attempts import StartResult
from app.store.claimbands import IN_CHUNK, Band, Finder, Merged
from app.store.claimwrite import mark_claimed, start_host_rows
from app.store.db import is_postgres
from app.store.dialect import current_db, write_transaction
from app.store.models import Queue, Task
from app.store.rows import tuples
from app.store.taskrows import Row, check_lease, check_owner, stored_target, when

HOST_KEY = "host"
MAX_SLOT_CAPACITY = 1000
_PRIORITIES = sorted((int(p) for p in Priority), reverse=True)
_LOCK_ROUNDS = 4  # re-picks when another workstation took some of our picks first


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
    return _claim(owner, slots, lease_s, now, kinds, start_host=False)[0]


def claim_and_start(
    owner: str,
    slots: Sequence[Slot],
    *,
    lease_s: float,
    now: float | None = None,
    kinds: Collection[str] | None = None,
) -> tuple[dict[str | None, list[TaskRecord]], list[StartResult]]:
    """``claim``, except that the host's tasks are also started in the same
    transaction (running, attempt counted, execution opened, as ``start`` does):
    the host has nothing to prepare, and this saves each a start's read, write and
    round trip. Tasks with a ``dedupe_key`` are only claimed: their lock is taken
    between claim and start.

    Returns:
        the claimed tasks by slot key (as ``claim``), and the started host tasks
        with their executions, in dispatch order.

    Raises:
        ValidationError: bad owner, lease, or slots (nothing is claimed).
    """
    return _claim(owner, slots, lease_s, now, kinds, start_host=True)


def _claim(owner: str, slots: Sequence[Slot], lease_s: float, now: float | None,
           kinds: Collection[str] | None, *, start_host: bool
           ) -> tuple[dict[str | None, list[TaskRecord]], list[StartResult]]:
    check_owner(owner)
    lease = check_lease(lease_s)
    _check_slots(slots)
    at = when(now)
    wanted = [s for s in slots if s.capacity > 0]
    allowed_kinds = sorted(set(kinds)) if kinds is not None else None
    if not wanted or allowed_kinds == []:
        return {}, []
    lost: set[int] = set()
    with write_transaction():
        for attempt in range(_LOCK_ROUNDS):
            gate = _QueueGate(at)
            finder = Finder(current_db(), at, gate.blocked, allowed_kinds,
                            sum(s.capacity for s in wanted))
            finder.index_targets(TargetKind.DEVICE,
                                 [s.serial for s in wanted if s.is_device and s.serial])
            finder.index_targets(TargetKind.AGENT, [s.agent_uuid for s in wanted if s.agent_uuid])
            try:
                picks = _assign(wanted, finder, gate, exclude=lost)
            finally:
                finder.close()
            newly_lost = _lock_picks(picks)
            if not newly_lost:
                break
            lost |= newly_lost
            if attempt == _LOCK_ROUNDS - 1:  # give up on those; claim the rest
                picks = {key: [r for r in rows if r["id"] not in lost]
                         for key, rows in picks.items()}
        started: list[StartResult] = []
        if start_host and picks.get(HOST_KEY):
            startable = [row for row in picks[HOST_KEY] if not row["dedupe_key"]]
            picks[HOST_KEY] = [row for row in picks[HOST_KEY] if row["dedupe_key"]]
            if not picks[HOST_KEY]:
                del picks[HOST_KEY]
            started = start_host_rows(startable, owner, at, at + lease)
        return mark_claimed(picks, wanted, owner, at, at + lease), started


# -- assignment --------------------------------------------------------------------------
def _assign(slots: list[Slot], finder: Finder, gate: _QueueGate, *,
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


def _slot_candidates(slot: Slot, finder: Finder) -> Iterator[Row]:
    """Every task this slot might run, in its dispatch order (lazily fetched)."""
    for priority in _PRIORITIES:
        bands: list[Band | Merged]
        if slot.host:
            bands = [finder.band(TargetKind.HOST, None, priority, retry)
                     for retry in (True, False)]
        elif slot.agent_uuid is not None:
            bands = list(finder.targeted(TargetKind.AGENT, slot.agent_uuid, priority))
        else:
            bands = [*finder.targeted(TargetKind.DEVICE, slot.serial or "", priority),
                     finder.untargeted(priority, True), finder.untargeted(priority, False)]
        for band in bands:
            index = 0
            while (row := band.get(index)) is not None:
                index += 1
                yield row


class _QueueGate:
    """Paused queues and how many more tasks each limited queue may take."""

    def __init__(self, at: float) -> None:
        db = current_db()
        paused: set[str] = set()
        limits: dict[str, int] = {}
        # Locking the limited queues' rows serialises claims on them between
        # workstations (PostgreSQL), so two claims cannot both fill the last place.
        cursor = db.execute_sql(  # type: ignore[no-untyped-call]
            _gate_sql(db.param, is_postgres(db)), [True, 0])
        for name, is_paused, limit in cursor.fetchall():
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
    PostgreSQL a row another claim holds is skipped and reported lost. On SQLite
    there is nothing to do: the writer lock, held since before the candidates
    were read, makes every pick ours.
    """
    db = current_db()
    if not is_postgres(db):
        return set()
    wanted = [row["id"] for rows in picks.values() for row in rows]
    got: set[int] = set()
    for start in range(0, len(wanted), IN_CHUNK):
        chunk = wanted[start:start + IN_CHUNK]
        cursor = db.execute_sql(  # type: ignore[no-untyped-call]
            _lock_sql(db.param, len(chunk)), [*chunk, TaskState.PENDING.value])
        got.update(task_id for (task_id,) in cursor.fetchall())
    return set(wanted) - got


@functools.lru_cache(maxsize=8)
def _gate_sql(p: str, postgres: bool) -> str:
    lock = " FOR UPDATE" if postgres else ""
    return (f'SELECT "name", "paused", "concurrency" FROM "{Queue._meta.table_name}" '
            f'WHERE "paused" = {p} OR "concurrency" > {p}{lock}')


@functools.lru_cache(maxsize=64)
def _lock_sql(p: str, n: int) -> str:
    return (f'SELECT "id" FROM "{Task._meta.table_name}" WHERE "id" IN '
            f'({", ".join([p] * n)}) AND "state" = {p} FOR UPDATE SKIP LOCKED')


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
