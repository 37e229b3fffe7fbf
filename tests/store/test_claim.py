"""The claim: right tasks, right order, right slots, never one task twice."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Sequence

import peewee
import pytest

from app.core.enums import Priority, TargetKind, TaskState
from app.core.errors import ValidationError
from app.core.ordering import dispatch_key
from app.core.records import TaskRecord
from app.core.targets import Target
from app.core.taskspec import TaskSpec
from app.store import queues, tasks
from app.store.claimbands import Finder
from app.store.db import close_database
from app.store.models import Task
from app.store.schema import open_store
from tests.store.helpers import T0, claim_in_lockstep, is_pg, snapshot, spec

Slot = tasks.Slot
AGENT = "12345678-1234-5678-1234-567812345678"


def _uids(result: dict[str | None, list[TaskRecord]], key: str) -> list[str]:
    return [t.uid for t in result.get(key, [])]


# -- a reference model of the claim, written from the rules, not from the code ----------
def _slot_may_run(slot: Slot, task: TaskRecord) -> bool:
    if slot.host:
        return task.target.kind is TargetKind.HOST
    if slot.agent_uuid is not None:
        return task.target.kind is TargetKind.AGENT and task.target.agent_uuid == slot.agent_uuid
    return task.target.matches_device(slot.serial or "", slot.tags, slot.model)


def reference_claim(pending: list[TaskRecord], slots: Sequence[Slot], now: float,
                    allowance: dict[str, int] | None = None) -> dict[str, list[str]]:
    """Round-robin over slots; each takes the minimum dispatch_key it may run."""
    left = dict(allowance or {})
    eligible = [t for t in pending if t.state is TaskState.PENDING and not t.cancel_requested
                and (t.not_before is None or t.not_before <= now)]
    taken: set[int] = set()
    capacity = {s.key: s.capacity for s in slots}
    out: dict[str, list[str]] = {}
    active = [s for s in slots if s.capacity > 0]
    while active:
        still = []
        for slot in active:
            serial = slot.serial if slot.is_device else None
            options = [t for t in eligible if t.id not in taken and _slot_may_run(slot, t)
                       and left.get(t.queue, 1) > 0]
            if not options:
                continue
            best = min(options, key=lambda t: dispatch_key(t, serial))
            taken.add(best.id)
            if best.queue in left:
                left[best.queue] -= 1
            out.setdefault(slot.key, []).append(best.uid)
            capacity[slot.key] -= 1
            if capacity[slot.key]:
                still.append(slot)
        active = still
    return out


def _random_lab(rng: random.Random, n: int) -> None:
    """Pending tasks with every kind of target, priority, retry flag, age (with ties)."""
    targets = [Target.any(), Target.any(), Target.device("S1"), Target.device("S2"),
               Target.device("ELSEWHERE"), Target.selector(["lab"]),
               Target.selector(["cam"], "Pixel 7"), Target.host(), Target.agent(AGENT)]
    specs = []
    for i in range(n):
        specs.append(spec(uid=f"r{i:04d}", target=rng.choice(targets),
                          priority=rng.choice(list(Priority)),
                          not_before=rng.choice([None, None, None, T0 - 5, T0 + 60])))
    created = [T0 - rng.randint(0, n // 4) for _ in specs]  # many equal times: ties by id
    by_time: dict[float, list[TaskSpec]] = {}
    for s, at in zip(specs, created, strict=True):
        by_time.setdefault(at, []).append(s)
    with Task._meta.database.atomic():  # one commit: fast on PostgreSQL too
        for at, group in by_time.items():
            tasks.enqueue_many(group, now=at)
        retried = rng.sample(range(n), n // 4)
        Task.update(attempts=1).where(Task.uid.in_([f"r{i:04d}" for i in retried])).execute()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_slot_takes_tasks_in_dispatch_key_order(store: peewee.Database, seed: int) -> None:
    rng = random.Random(seed)
    _random_lab(rng, 300)
    pending = tasks.list_tasks(states=[TaskState.PENDING], limit=1000)
    slot = Slot("S1", tags=("lab",), capacity=25)
    eligible = [t for t in pending if _slot_may_run(slot, t)
                and (t.not_before is None or t.not_before <= T0)]
    expected = sorted(eligible, key=lambda t: dispatch_key(t, "S1"))[:25]
    got = tasks.claim("w", [slot], lease_s=30, now=T0)
    assert _uids(got, "S1") == [t.uid for t in expected]


@pytest.mark.parametrize("seed", [4, 5, 6, 7])
def test_many_slots_match_the_reference_model(store: peewee.Database, seed: int) -> None:
    rng = random.Random(seed)
    _random_lab(rng, 400)
    pending = tasks.list_tasks(states=[TaskState.PENDING], limit=1000)
    slots = [Slot("S1", tags=("lab",), capacity=rng.randint(1, 6)),
             Slot("S2", tags=("cam", "lab"), model="pixel 7", capacity=rng.randint(1, 6)),
             Slot("S3", capacity=rng.randint(0, 6)),
             Slot(None, host=True, capacity=rng.randint(1, 4)),
             Slot(None, agent_uuid=AGENT, capacity=rng.randint(1, 4))]
    rng.shuffle(slots)
    got = tasks.claim("w", slots, lease_s=30, now=T0)
    assert {k: [t.uid for t in v] for k, v in got.items()} == reference_claim(pending, slots, T0)


def test_dispatch_order_rules_one_by_one(store: peewee.Database) -> None:
    tasks.enqueue(spec(uid="old-normal"), now=T0 - 100)
    tasks.enqueue(spec(uid="new-normal"), now=T0 - 50)
    tasks.enqueue(spec(uid="retry-normal"), now=T0 - 10)
    Task.update(attempts=1).where(Task.uid == "retry-normal").execute()
    tasks.enqueue(spec(uid="targeted-normal", target=Target.device("S1")), now=T0 - 5)
    tasks.enqueue(spec(uid="newest-high", priority=Priority.HIGH), now=T0 - 1)
    got = tasks.claim("w", [Slot("S1", capacity=10)], lease_s=30, now=T0)
    # priority > targeted at this device > retries > age
    assert _uids(got, "S1") == ["newest-high", "targeted-normal", "retry-normal",
                                "old-normal", "new-normal"]


def test_claim_sets_lease_and_slot_and_returns_records(store: peewee.Database) -> None:
    task = tasks.enqueue(spec(), now=T0 - 1)
    got = tasks.claim("engine-1", [Slot("S9", capacity=2)], lease_s=45, now=T0)
    claimed = got["S9"][0]
    assert claimed.uid == task.uid and claimed.state is TaskState.CLAIMED
    assert (claimed.lease_owner, claimed.lease_expires_at) == ("engine-1", T0 + 45)
    assert (claimed.device_serial, claimed.updated_at) == ("S9", T0)
    assert tasks.get_task(task.uid) == claimed  # what is returned is what is stored
    assert tasks.claim("engine-1", [Slot("S9")], lease_s=45, now=T0) == {}


def test_ineligible_tasks_are_not_claimed(store: peewee.Database) -> None:
    tasks.enqueue(spec(uid="later", not_before=T0 + 1))
    tasks.enqueue(spec(uid="paused", queue="paused-q"))
    queues.set_paused("paused-q", True)
    tasks.enqueue(spec(uid="cancelled"))
    tasks.request_cancel("cancelled")
    tasks.enqueue(spec(uid="other-device", target=Target.device("S2")))
    tasks.enqueue(spec(uid="needs-tag", target=Target.selector(["cam"])))
    tasks.enqueue(spec(uid="host-only", target=Target.host()))
    tasks.enqueue(spec(uid="agent-only", target=Target.agent(AGENT)))
    tasks.enqueue(spec("adb.install", uid="other-kind"))
    tasks.enqueue(spec(uid="ok"))
    got = tasks.claim("w", [Slot("S1", tags=("lab",), capacity=20)], lease_s=30, now=T0,
                      kinds={"adb.shell"})
    assert _uids(got, "S1") == ["ok"]
    assert tasks.claim("w", [Slot("S1")], lease_s=30, now=T0, kinds=[]) == {}
    # Once due / resumed, they are claimable.
    queues.set_paused("paused-q", False)
    later = tasks.claim("w", [Slot("S1", capacity=20)], lease_s=30, now=T0 + 1)
    assert sorted(_uids(later, "S1")) == ["later", "other-kind", "paused"]


def test_host_and_agent_slots_take_only_their_targets(store: peewee.Database) -> None:
    tasks.enqueue(spec(uid="any"))
    tasks.enqueue(spec(uid="host", target=Target.host()))
    tasks.enqueue(spec(uid="agent", target=Target.agent(AGENT)))
    tasks.enqueue(spec(uid="other-agent", target=Target.agent(str(uuid.uuid4()))))
    got = tasks.claim("w", [Slot(None, host=True, capacity=5),
                            Slot(None, agent_uuid=AGENT, capacity=5)], lease_s=30, now=T0)
    assert _uids(got, "host") == ["host"] and _uids(got, AGENT) == ["agent"]
    assert got[AGENT][0].agent_uuid == AGENT and got[AGENT][0].device_serial is None
    assert got["host"][0].device_serial is None


def test_selector_tasks_follow_tags_and_model(store: peewee.Database) -> None:
    tasks.enqueue(spec(uid="cam-pixel", target=Target.selector(["cam"], "Pixel 7")), now=T0 - 3)
    tasks.enqueue(spec(uid="lab", target=Target.selector(["lab"])), now=T0 - 2)
    got = tasks.claim("w", [Slot("A", tags=("cam",), model="Galaxy"),
                            Slot("B", tags=("cam", "lab"), model="PIXEL 7", capacity=2)],
                      lease_s=30, now=T0)
    assert "A" not in got and _uids(got, "B") == ["cam-pixel", "lab"]


def test_work_is_spread_round_robin_over_free_devices(store: peewee.Database) -> None:
    for i in range(6):
        tasks.enqueue(spec(uid=f"t{i}"), now=T0 - 10 + i)
    got = tasks.claim("w", [Slot("A", capacity=3), Slot("B", capacity=3)], lease_s=30, now=T0)
    assert _uids(got, "A") == ["t0", "t2", "t4"] and _uids(got, "B") == ["t1", "t3", "t5"]


def test_queue_concurrency_counts_running_work_and_this_claim(store: peewee.Database) -> None:
    for i in range(6):
        tasks.enqueue(spec(uid=f"q{i}", queue="limited"), now=T0 - 10 + i)
    tasks.enqueue(spec(uid="free"), now=T0)
    queues.set_concurrency("limited", 3)
    first = tasks.claim("w", [Slot("A")], lease_s=30, now=T0)
    tasks.start(first["A"][0].uid, "w", now=T0)  # one running
    got = tasks.claim("w", [Slot(f"S{i}") for i in range(5)], lease_s=30, now=T0)
    taken = sorted(t.uid for batch in got.values() for t in batch)
    assert taken == ["free", "q1", "q2"]  # 1 running + 2 claimed now = the limit of 3
    assert queues.get_queue("limited").active == 3
    assert tasks.claim("w", [Slot("Z")], lease_s=30, now=T0) == {}
    queues.set_concurrency("limited", 0)
    assert _uids(tasks.claim("w", [Slot("Z")], lease_s=30, now=T0), "Z") == ["q3"]


@pytest.mark.parametrize(
    "slots",
    [
        [Slot(None)],
        [Slot("A", host=True)],
        [Slot("A"), Slot("A")],
        [Slot("A", capacity=-1)],
        [Slot("A", capacity=True)],  # type: ignore[arg-type]
        ["A"],  # type: ignore[list-item]
    ],
)
def test_bad_slots_are_refused_and_nothing_is_claimed(store: peewee.Database,
                                                      slots: list[Slot]) -> None:
    tasks.enqueue(spec())
    before = snapshot()
    with pytest.raises(ValidationError):
        tasks.claim("w", slots, lease_s=30)
    assert snapshot() == before


@pytest.mark.parametrize(("owner", "lease"), [("", 30), ("w", 0), ("w", float("inf"))])
def test_bad_owner_or_lease_is_refused(store: peewee.Database, owner: str, lease: float) -> None:
    tasks.enqueue(spec())
    before = snapshot()
    with pytest.raises(ValidationError):
        tasks.claim(owner, [Slot("A")], lease_s=lease)
    assert snapshot() == before


def test_two_connections_claiming_at_once_never_share_a_task(store: peewee.Database,
                                                             store_location: str) -> None:
    """Two engines on two connections (two workstations on PostgreSQL: SKIP LOCKED)."""
    tasks.enqueue_many([spec(uid=f"c{i:04d}") for i in range(600)], now=T0 - 1)

    def take(owner: str) -> list[str]:
        got = tasks.claim(owner, [Slot(f"{owner}-{i}", capacity=3) for i in range(4)],
                          lease_s=30, now=T0)
        return [t.uid for batch in got.values() for t in batch]

    seen = claim_in_lockstep(store, take)
    one, two = set(seen["one"]), set(seen["two"])
    assert len(one) == len(seen["one"]) and len(two) == len(seen["two"])
    assert not one & two
    assert len(one | two) == 600
    assert one and two  # both really took part
    owners = dict(Task.select(Task.uid, Task.lease_owner).tuples())
    assert all(owners[u] == "one" for u in one) and all(owners[u] == "two" for u in two)


def test_postgres_claim_skips_rows_another_transaction_holds(store: peewee.Database,
                                                             store_location: str) -> None:
    """While one workstation's claim transaction is open, the other takes other tasks
    at once instead of waiting (FOR UPDATE SKIP LOCKED)."""
    if not is_pg(store):
        pytest.skip("PostgreSQL only: SQLite serialises writers with its lock")
    tasks.enqueue_many([spec(uid=f"k{i}") for i in range(4)], now=T0 - 1)
    holding, release = threading.Event(), threading.Event()
    result: dict[str, list[str]] = {}

    def slow_engine() -> None:
        with store.atomic():
            got = tasks.claim("slow", [Slot("A", capacity=2)], lease_s=30, now=T0)
            result["slow"] = [t.uid for t in got["A"]]
            holding.set()
            release.wait(10)
        store.close()

    thread = threading.Thread(target=slow_engine)
    thread.start()
    assert holding.wait(10)
    fast = tasks.claim("fast", [Slot("B", capacity=4)], lease_s=30, now=T0)
    release.set()
    thread.join(10)
    assert result["slow"] == ["k0", "k1"]
    assert _uids(fast, "B") == ["k2", "k3"]


def test_fresh_bands_are_read_in_index_order(sqlite_store: peewee.Database) -> None:
    """The claim must not sort all pending tasks: on SQLite the band query for fresh
    work walks an index in created_at order (no temporary sort)."""
    finder = Finder(sqlite_store, T0, ["paused"], ["adb.shell"], 4)
    for kind, value in ((TargetKind.ANY, None), (TargetKind.SELECTOR, None),
                        (TargetKind.DEVICE, "S1"), (TargetKind.HOST, None)):
        for after in (None, (T0, 5)):
            sql, params = finder.band_sql(kind, value, 1, False, after, 8)
            plan = " ".join(str(row[-1]) for row in
                            sqlite_store.execute_sql("EXPLAIN QUERY PLAN " + sql, params))
            assert "USING INDEX task_state_target_kind" in plan, plan
            assert "TEMP B-TREE" not in plan, plan


def test_band_sql_matches_the_same_query_built_by_peewee(store: peewee.Database) -> None:
    """The cached hand-written band SQL selects exactly what the portable peewee query
    does, on both backends (a guard for the hot-path optimisation)."""
    _random_lab(random.Random(3), 200)
    tasks.request_cancel("r0001")
    finder = Finder(store, T0, ["other-q"], ["adb.shell"], 4)
    for kind, value in ((TargetKind.ANY, None), (TargetKind.DEVICE, "S1"),
                        (TargetKind.SELECTOR, None), (TargetKind.AGENT, AGENT)):
        for priority in Priority:
            for retry in (True, False):
                conditions = [
                    Task.state == "pending", Task.target_kind == kind.value,
                    Task.priority == int(priority),
                    (Task.attempts > 0) if retry else (Task.attempts == 0),
                    Task.cancel_requested == False,  # noqa: E712
                    Task.not_before.is_null() | (Task.not_before <= T0),
                    Task.queue.not_in(["other-q"]), Task.kind.in_(["adb.shell"]),
                ]
                if value is not None:
                    conditions.append(Task.target_value == value)
                expected = [dict(r) for r in Task.select().where(*conditions)
                            .order_by(Task.created_at, Task.id).limit(500).dicts()]
                assert finder.fetch(kind, value, int(priority), retry, None, 500) == expected
                if len(expected) > 2:
                    middle = expected[1]
                    after = finder.fetch(kind, value, int(priority), retry,
                                         (middle["created_at"], middle["id"]), 500)
                    assert after == expected[2:]


def test_claim_reopened_store_sees_claims(tmp_path: object, store_location: str,
                                          store: peewee.Database) -> None:
    """Claims are committed: a new connection sees them."""
    tasks.enqueue(spec(uid="x"))
    tasks.claim("w", [Slot("A")], lease_s=30)
    close_database()
    open_store(store_location)
    assert tasks.get_task("x").state is TaskState.CLAIMED
