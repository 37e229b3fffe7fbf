"""The engine over the simulated lab: work spreads over phones, each task runs once,
targets, holds, pauses and bad input behave as docs/architecture.md says."""

from __future__ import annotations

import asyncio
import collections

import pytest

from app.core.enums import ExecStatus, Priority, TaskState
from app.core.errors import ValidationError
from app.core.targets import Target
from app.core.taskspec import TaskSpec

pytestmark = pytest.mark.asyncio


async def _all_done(engine, uids, timeout=60.0):
    from app.store import tasks

    async def done() -> bool:
        records = await engine.store.call(lambda: [tasks.get_task(u) for u in uids])
        return all(r.state.is_terminal for r in records)

    assert await engine.wait_until(done, timeout=timeout, interval=0.2), "tasks did not finish"
    return await engine.store.call(lambda: [tasks.get_task(u) for u in uids])


async def test_thousand_captures_run_once_each_spread_over_twelve_phones(lab, make_engine):
    from app.store import executions

    async with make_engine(lab) as engine:
        specs = [TaskSpec(kind="demo.capture", payload={"steps": 1, "step_ms": 0},
                          source="api")] * 1000
        records = await engine.submit_many(specs)
        done = await _all_done(engine, [r.uid for r in records], timeout=240)
        assert {r.state for r in done} == {TaskState.SUCCEEDED}

        rows = await engine.store.call(
            lambda: [e for r in records for e in executions.executions_for_task(r.uid)])
        per_task = collections.Counter(e.task_id for e in rows)
        assert len(per_task) == 1000 and set(per_task.values()) == {1}
        assert {e.status for e in rows} == {ExecStatus.SUCCESS}
        per_phone = collections.Counter(e.device_serial for e in rows)
        assert set(per_phone) == set(lab.serials)
        # Busy time is spread: no phone did less than a third of its fair share.
        assert min(per_phone.values()) >= 1000 / 12 / 3, per_phone


async def test_targeted_task_runs_only_on_its_device(lab, make_engine):
    from app.store import executions

    serial = lab.serials[3]
    async with make_engine(lab) as engine:
        recs = await engine.submit_many([
            TaskSpec(kind="adb.shell", payload={"command": "getprop ro.serialno"},
                     target=Target.device(serial))] * 5)
        done = await _all_done(engine, [r.uid for r in recs])
        assert all(r.state is TaskState.SUCCEEDED for r in done)
        rows = await engine.store.call(
            lambda: [executions.latest_execution_for_task(r.uid) for r in recs])
        assert {e.device_serial for e in rows} == {serial}
        assert all(e.result["exit_code"] == 0 and e.result["output"].strip() for e in rows)


async def test_held_device_and_paused_queue_get_no_work(lab, make_engine):
    serial = lab.serials[0]
    async with make_engine(lab) as engine:
        await engine.hold_device(serial, "alice", note="manual check")
        held = await engine.submit(TaskSpec(kind="adb.shell", payload={"command": "echo hi"},
                                            target=Target.device(serial)))
        await engine.set_queue_paused("slow", True, actor="alice")
        paused = await engine.submit(TaskSpec(kind="adb.shell", payload={"command": "echo hi"},
                                              queue="slow"))
        await asyncio.sleep(1.0)
        assert (await engine.get_task(held.uid)).state is TaskState.PENDING
        assert (await engine.get_task(paused.uid)).state is TaskState.PENDING
        view = {v.serial: v for v in engine.device_views()}[serial]
        assert view.dispatch == "held" and view.held_by == "operator:alice"
        counts = engine.device_counts()
        assert counts.get("held") == 1 and sum(counts.values()) == len(lab.serials)
        assert counts == collections.Counter(v.dispatch for v in engine.device_views())

        await engine.release_device(serial, "alice")
        await engine.set_queue_paused("slow", False, actor="alice")
        done = await _all_done(engine, [held.uid, paused.uid])
        assert all(r.state is TaskState.SUCCEEDED for r in done)


async def test_priority_decides_what_runs_first(fresh_lab, make_engine):
    from app.store import executions

    serial = fresh_lab.serials[0]
    async with make_engine(fresh_lab) as engine:
        await engine.hold_device(serial, "op")  # queue everything up first
        target = Target.device(serial)
        low = await engine.submit(TaskSpec(kind="adb.shell", payload={"command": "echo low"},
                                           target=target, priority=Priority.LOW))
        crit = await engine.submit(TaskSpec(kind="adb.shell", payload={"command": "echo c"},
                                            target=target, priority=Priority.CRITICAL))
        await engine.release_device(serial, "op")
        await _all_done(engine, [low.uid, crit.uid])
        first, second = await engine.store.call(
            lambda: [executions.latest_execution_for_task(u) for u in (crit.uid, low.uid)])
        assert first.started_at < second.started_at


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (dict(kind="no.such_kind"), "unknown task kind"),
        (dict(kind="adb.shell", payload={}), "command"),
        (dict(kind="adb.shell", payload={"command": 5}), "command"),
        (dict(kind="adb.shell", payload={"command": "x" * (1024 * 1024 + 10)}), "limit"),
        (dict(kind="local.execute", payload={"argv": ["true"]}), "target"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_stored(make_engine, spec, message):
    from app.store import tasks

    async with make_engine(None) as engine:
        with pytest.raises(ValidationError) as err:
            await engine.submit(TaskSpec(**spec))
        assert message in str(err.value)
        counts = await engine.store.call(tasks.count_by_state)
        assert sum(counts.values()) == 0


async def test_a_big_bulk_submit_lets_the_loop_run_and_a_bad_row_stores_nothing(make_engine):
    """Validating 5,000 rows takes a while: the loop must keep serving other work
    meanwhile, and one bad row late in the batch still refuses the whole batch."""
    from app.store import tasks

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    good = TaskSpec(kind="adb.shell", payload={"command": "true"})
    async with make_engine(None) as engine:
        running = asyncio.create_task(ticker())
        try:
            with pytest.raises(ValidationError, match="task #5000"):
                await engine.submit_many([good] * 4999 + [TaskSpec(kind="adb.shell")])
            refused_ticks = ticks
            records = await engine.submit_many([good] * 5000)
        finally:
            running.cancel()
        assert refused_ticks > 3  # the ticker ran while the rows were being checked
        assert len(records) == 5000
        counts = await engine.store.call(tasks.count_by_state)
        assert sum(counts.values()) == 5000  # only the good batch is stored


async def test_bad_priority_is_refused():
    with pytest.raises(ValidationError, match="priority"):
        TaskSpec.from_json({"kind": "adb.shell", "payload": {"command": "x"},
                            "priority": "urgent"})


async def test_the_health_check_kind_comes_from_the_entry_point_and_runs(lab, make_engine):
    from app.store import executions

    async with make_engine(lab) as engine:
        assert engine.registry.source("lab.health_check") == "plugin:taskdesk"
        rec = await engine.submit(TaskSpec(kind="lab.health_check", payload={},
                                           target=Target.device(lab.serials[5])))
        done = await _all_done(engine, [rec.uid])
        assert done[0].state is TaskState.SUCCEEDED, done[0].last_error
        report = done[0].result
        assert report["serial"] == lab.serials[5]
        assert 0 <= report["battery_level"] <= 100 and report["uptime_s"] > 0
        ex = await engine.store.call(executions.latest_execution_for_task, rec.uid)
        assert ex.metadata["progress_percent"] == 100


async def test_a_task_whose_kind_is_gone_fails_once_without_running(lab, make_engine):
    """A task stored by another install (its plugin is not here) fails with reason
    unknown_kind and is not retried, on the host (started by the claim) and on a phone."""
    from app.store import executions, tasks

    async with make_engine(lab) as engine:
        stored = await engine.store.call(tasks.enqueue_many, [
            TaskSpec(kind="gone.plugin", target=Target.host(), max_attempts=3),
            TaskSpec(kind="gone.plugin", target=Target.device(lab.serials[0]), max_attempts=3),
        ])
        engine.dispatcher.wake()
        done = await _all_done(engine, [r.uid for r in stored])
        assert {r.state for r in done} == {TaskState.FAILED}
        for record in done:
            (row,) = await engine.store.call(executions.executions_for_task, record.uid)
            assert row.status is ExecStatus.FAILURE
            assert row.metadata["reason"] == "unknown_kind"
            assert "is its plugin installed?" in row.error
