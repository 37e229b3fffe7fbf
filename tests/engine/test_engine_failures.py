"""What goes wrong, and what the engine records: cancel, timeout, a phone unplugged
mid-task, an adb server restart, shutdown mid-run, duplicate runs."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.core.enums import ExecStatus, TaskState
from app.core.targets import Target
from app.core.taskspec import TaskSpec

pytestmark = pytest.mark.asyncio


async def _wait_state(engine, uid, *states, timeout=30.0):
    async def check() -> bool:
        return (await engine.get_task(uid)).state in states

    assert await engine.wait_until(check, timeout=timeout, interval=0.05), (
        f"{uid} never reached {states}: {(await engine.get_task(uid)).state}")
    return await engine.get_task(uid)


async def _executions(engine, uid):
    from app.store import executions

    return await engine.store.call(executions.executions_for_task, uid)


async def test_cancelling_a_running_shell_interrupts_it_and_records_revoked(lab, make_engine):
    async with make_engine(lab) as engine:
        rec = await engine.submit(TaskSpec(kind="adb.shell", payload={"command": "sleep 60"},
                                           target=Target.device(lab.serials[1])))
        await _wait_state(engine, rec.uid, TaskState.RUNNING)
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await engine.cancel(rec.uid, actor="alice")
        final = await _wait_state(engine, rec.uid, TaskState.CANCELLED, timeout=5)
        assert time.monotonic() - started < 2.0
        (execution,) = await _executions(engine, rec.uid)
        assert execution.status is ExecStatus.REVOKED and execution.finished_at
        assert final.state is TaskState.CANCELLED
        # The phone is free again and answers at once.
        again = await engine.submit(TaskSpec(kind="adb.shell", payload={"command": "echo ok"},
                                             target=Target.device(lab.serials[1])))
        assert (await _wait_state(engine, again.uid, TaskState.SUCCEEDED)).result["output"]


async def test_an_attempt_over_its_timeout_fails_and_is_retried(lab, make_engine):
    async with make_engine(lab) as engine:
        rec = await engine.submit(TaskSpec(kind="adb.shell", payload={"command": "sleep 30"},
                                           timeout_s=0.5, max_attempts=2,
                                           target=Target.device(lab.serials[2])))
        final = await _wait_state(engine, rec.uid, TaskState.DEAD, timeout=40)
        rows = await _executions(engine, rec.uid)
        assert [e.status for e in rows] == [ExecStatus.FAILURE, ExecStatus.FAILURE]
        assert all(e.metadata.get("reason") == "timeout" for e in rows)
        assert final.attempts == 2


async def test_phone_unplugged_mid_task_is_retried_elsewhere(fresh_lab, make_engine):
    lab = fresh_lab
    async with make_engine(lab, device_lost_grace_s=0.5) as engine:
        rec = await engine.submit(TaskSpec(kind="demo.capture",
                                           payload={"steps": 8, "step_ms": 300}))
        task = await _wait_state(engine, rec.uid, TaskState.RUNNING)
        await asyncio.sleep(0.4)
        lost_serial = task.device_serial
        await asyncio.get_running_loop().run_in_executor(None, lab.unplug, lost_serial)
        final = await _wait_state(engine, rec.uid, TaskState.SUCCEEDED, timeout=40)
        rows = await _executions(engine, rec.uid)
        assert rows[0].status is ExecStatus.FAILURE
        assert rows[0].metadata.get("reason") == "device_lost"
        assert rows[0].device_serial == lost_serial
        assert rows[-1].status is ExecStatus.SUCCESS and rows[-1].device_serial != lost_serial
        assert final.attempts == len(rows)
        await asyncio.get_running_loop().run_in_executor(None, lab.plug, lost_serial)


async def test_adb_server_restart_mid_run_is_survived(fresh_lab, make_engine):
    lab = fresh_lab
    async with make_engine(lab) as engine:
        specs = [TaskSpec(kind="demo.capture", payload={"steps": 2, "step_ms": 100},
                          max_attempts=5)] * 40
        recs = await engine.submit_many(specs)
        await asyncio.sleep(1.0)
        await asyncio.get_running_loop().run_in_executor(None, lab.restart_adb_server)

        async def finished() -> bool:
            states = [(await engine.get_task(r.uid)).state for r in recs]
            return all(s.is_terminal for s in states)

        assert await engine.wait_until(finished, timeout=90, interval=0.3)
        states = {(await engine.get_task(r.uid)).state for r in recs}
        assert states == {TaskState.SUCCEEDED}


async def test_shutdown_hands_running_work_back_without_using_an_attempt(lab, make_engine,
                                                                         tmp_path):
    data = tmp_path / "shared"
    async with make_engine(lab, data_dir=data) as engine:
        rec = await engine.submit(TaskSpec(kind="adb.shell", payload={"command": "sleep 30"},
                                           max_attempts=1))
        await _wait_state(engine, rec.uid, TaskState.RUNNING)
    async with make_engine(None, data_dir=data) as engine:
        task = await engine.get_task(rec.uid)
        assert task.state is TaskState.PENDING and task.attempts == 0
        (execution,) = await _executions(engine, rec.uid)
        assert execution.status is ExecStatus.FAILURE
        assert execution.metadata.get("reason") == "shutdown"
    # Back on the phones, its one allowed attempt is still there and it runs again.
    async with make_engine(lab, data_dir=data) as engine:
        final = await _wait_state(engine, rec.uid, TaskState.CANCELLED, TaskState.RUNNING)
        await engine.cancel(rec.uid, actor="test")
        await _wait_state(engine, rec.uid, TaskState.CANCELLED)
        rows = await _executions(engine, rec.uid)
        assert [(e.attempt, e.status) for e in rows] == [
            (1, ExecStatus.FAILURE), (2, ExecStatus.REVOKED)]
        assert final.attempts == 1


async def test_dedupe_key_skips_a_second_run_while_the_first_holds_the_lock(lab, make_engine):
    async with make_engine(lab) as engine:
        first = await engine.submit(TaskSpec(kind="adb.shell", payload={"command": "sleep 2"},
                                             dedupe_key="capture:serial=X"))
        await _wait_state(engine, first.uid, TaskState.RUNNING)
        second = await engine.submit(TaskSpec(kind="adb.shell",
                                              payload={"command": "echo again"},
                                              dedupe_key="capture:serial=X"))
        skipped = await _wait_state(engine, second.uid, TaskState.SUCCEEDED)
        assert skipped.result == {"success": False, "status": "skipped",
                                  "reason": "task_already_running"}
        assert (await _wait_state(engine, first.uid, TaskState.SUCCEEDED)).result["exit_code"] == 0


async def test_host_tasks_run_locally(make_engine):
    async with make_engine(None) as engine:
        rec = await engine.submit(TaskSpec(kind="local.execute",
                                           payload={"argv": ["echo", "from host"]},
                                           target=Target.host()))
        done = await _wait_state(engine, rec.uid, TaskState.SUCCEEDED)
        assert "from host" in done.result["output"]


async def test_a_host_task_is_interrupted_by_cancel_and_by_its_timeout(make_engine):
    """Host tasks run inside their job's task: an interrupt must still stop them at
    once and record the right outcome, and the engine must go on working."""
    async with make_engine() as engine:
        sleeper = TaskSpec(kind="local.execute", target=Target.host(),
                           payload={"argv": ["sleep", "60"]})
        cancelled = await engine.submit(sleeper)
        timed_out = await engine.submit(TaskSpec(kind="local.execute", target=Target.host(),
                                                 payload={"argv": ["sleep", "60"]},
                                                 timeout_s=0.5, max_attempts=1))
        await _wait_state(engine, cancelled.uid, TaskState.RUNNING)
        started = time.monotonic()
        await engine.cancel(cancelled.uid, actor="alice")
        await _wait_state(engine, cancelled.uid, TaskState.CANCELLED, timeout=5)
        assert time.monotonic() - started < 2.0
        (revoked,) = await _executions(engine, cancelled.uid)
        assert revoked.status is ExecStatus.REVOKED

        await _wait_state(engine, timed_out.uid, TaskState.DEAD, timeout=10)
        (failed,) = await _executions(engine, timed_out.uid)
        assert failed.status is ExecStatus.FAILURE and failed.metadata["reason"] == "timeout"

        after = await engine.submit(TaskSpec(kind="local.execute", target=Target.host(),
                                             payload={"argv": ["echo", "still here"]}))
        done = await _wait_state(engine, after.uid, TaskState.SUCCEEDED)
        assert "still here" in str(done.result)


async def test_a_result_the_store_cannot_keep_is_recorded_as_text(make_engine):
    """NaN and objects are not JSON: the attempt still ends, its result made storable."""
    from app.engine.kinds.base import HOST_TARGETS, TaskKind

    class Odd(TaskKind):
        name = "test.odd_result"
        title = "returns NaN and an object"
        targets = HOST_TARGETS

        async def run(self, ctx, payload):
            return {"ratio": float("nan"), "when": object(), "n": 1}

    async with make_engine() as engine:
        engine.registry.register(Odd())
        record = await engine.submit(TaskSpec(kind="test.odd_result", target=Target.host()))
        done = await _wait_state(engine, record.uid, TaskState.SUCCEEDED, timeout=10)
        assert done.result["ratio"] == "nan" and done.result["n"] == 1
        assert isinstance(done.result["when"], str)
        (row,) = await _executions(engine, record.uid)
        assert row.status is ExecStatus.SUCCESS and row.result == done.result
