"""Running claimed tasks: one job per device (tasks in sequence), host tasks in parallel.

Every attempt ends in exactly one recorded outcome. Interruptions are reasons
set on the running attempt before its coroutine is cancelled:

    cancelled   operator cancel          -> execution REVOKED, task cancelled
    timeout     task's timeout_s passed  -> FAILURE (reason timeout), retried
    device_lost device gone past grace   -> FAILURE (reason device_lost), retried at once
    shutdown    the engine is stopping   -> FAILURE (reason shutdown), task back to
                                            the queue without using up an attempt
    lease_lost  another worker reaped it -> nothing more to record (the reaper did)

A kind's coroutine runs inside its job's task, which an interrupt cancels. A kind
that swallows the cancellation holds its device (or host slot) until it returns;
that is logged, and what it returned is recorded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
import traceback
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.enums import ExecStatus, HolderKind
from app.core.errors import ConflictError, TaskDeskError, ValidationError
from app.core.records import ExecutionRecord, TaskRecord
from app.devices.base import (
    CommandTimeoutError,
    DeviceGoneError,
    DeviceProvider,
)
from app.engine.bus import EventBus, ExecutionFinished, TaskChanged
from app.engine.devicehandle import EngineDeviceHandle
from app.engine.devicepool import DevicePool, DeviceSlot
from app.engine.kinds.base import PermanentError
from app.engine.kinds.registry import KindRegistry
from app.engine.runcontext import EngineRunContext
from app.engine.storethread import StoreThread
from app.engine.taskops import TaskOps

log = logging.getLogger(__name__)

SKIPPED_RESULT = {"success": False, "status": "skipped", "reason": "task_already_running"}
SHUTDOWN_ERROR = "interrupted: TaskDesk was shut down during the attempt"


@dataclass
class RunningAttempt:
    """A kind's coroutine running inside its job's task (``runner``): an interrupt
    cancels that task while, and only while, the kind runs."""

    task: TaskRecord
    execution_id: int
    runner: asyncio.Task[Any]
    ctx: EngineRunContext
    slot: DeviceSlot | None
    reason: str | None = None
    started: float = field(default_factory=time.monotonic)
    live: bool = True  # the kind has not returned yet

    def interrupt(self, reason: str) -> None:
        if self.reason is not None or not self.live:
            return
        self.reason = reason
        self.ctx.cancel()
        self.runner.cancel()


@dataclass
class Outcome:
    """How the kind's coroutine ended: a result, an exception, or cancelled."""

    result: Any = None
    error: BaseException | None = None
    cancelled: bool = False


class JobRunner:
    def __init__(
        self,
        *,
        owner: str,
        store: StoreThread,
        bus: EventBus,
        registry: KindRegistry,
        provider: DeviceProvider | None,
        pool: concurrent.futures.Executor,
        devices: DevicePool,
        artifacts_root: Path,
    ) -> None:
        self.owner = owner
        self.running: dict[str, RunningAttempt] = {}
        self.held: set[str] = set()  # uids claimed by us and not finished
        self._store = store
        self._bus = bus
        self._registry = registry
        self._provider = provider
        self._pool = pool
        self._devices = devices
        self._artifacts_root = artifacts_root
        self._stopping = False
        self.ops = TaskOps(store, owner)

    # -- control ----------------------------------------------------------------------
    def interrupt(self, uid: str, reason: str) -> bool:
        attempt = self.running.get(uid)
        if attempt is None:
            return False
        attempt.interrupt(reason)
        return True

    def interrupt_device(self, serial: str, reason: str) -> None:
        for attempt in list(self.running.values()):
            if attempt.slot is not None and attempt.slot.serial == serial:
                attempt.interrupt(reason)

    def begin_shutdown(self) -> None:
        self._stopping = True
        for attempt in list(self.running.values()):
            attempt.interrupt("shutdown")

    # -- jobs -------------------------------------------------------------------------
    async def run_job(self, slot: DeviceSlot | None, tasks: list[TaskRecord]) -> None:
        """Run claimed tasks in order on one device (or one host task)."""
        from app.store import tasks as task_store

        self.held.update(t.uid for t in tasks)
        try:
            for index, task in enumerate(tasks):
                usable = slot is None or (slot.online and slot.lost_timer is None)
                if self._stopping or not usable or task.uid not in self.held:
                    for rest in tasks[index:]:
                        if rest.uid in self.held:
                            await self._quietly(task_store.release, rest.uid, self.owner)
                    break
                await self._run_task(slot, task)
        finally:
            self.held.difference_update(t.uid for t in tasks)

    async def run_started(self, task: TaskRecord, execution: ExecutionRecord) -> None:
        """Run a host task the claim has already started (``claim_and_start``)."""
        try:
            kind = self._registry.get(task.kind)
        except ValidationError as exc:
            await self._end_unrun(task, execution.id, self.ops.fail(
                task.uid, execution.id, error=f"{exc.message} (is its plugin installed?)",
                reason="unknown_kind", retryable=False))
            return
        if self._stopping:  # claimed just as the engine began to stop
            await self._end_unrun(task, execution.id, self.ops.interrupt(
                task.uid, execution.id, error=SHUTDOWN_ERROR, reason="shutdown"))
            return
        self.held.add(task.uid)  # its lease is renewed while it runs
        try:
            await self._attempt(None, kind, task, execution.id)
        finally:
            self.held.discard(task.uid)

    async def _end_unrun(self, task: TaskRecord, execution_id: int,
                         outcome: Awaitable[TaskRecord]) -> None:
        try:
            updated = await outcome
        except ConflictError as exc:
            log.warning("outcome of %s not recorded: %s", task.uid, exc)
            return
        self._bus.publish(TaskChanged(task=updated))

    async def _run_task(self, slot: DeviceSlot | None, task: TaskRecord) -> None:
        from app.store import locks

        try:
            kind = self._registry.get(task.kind)
        except ValidationError as exc:
            await self._fail_unstarted(task, f"{exc.message} (is its plugin installed?)")
            return
        lock_taken = False
        if task.dedupe_key:
            ttl = max(3600.0, task.timeout_s * 2)
            lock = await self._store.call(locks.acquire, task.dedupe_key, task.uid,
                                          holder_kind=HolderKind.TASK, ttl_s=ttl,
                                          note=f"{task.kind} {task.uid}")
            if lock is None:
                await self._skip(task)
                return
            lock_taken = True
        try:
            try:
                task, execution = await self.ops.start(task.uid)
            except ConflictError as exc:
                log.info("task %s not started: %s", task.uid, exc)
                return
            await self._attempt(slot, kind, task, execution.id)
        finally:
            if lock_taken:
                await self._quietly(locks.release, task.dedupe_key, task.uid)

    async def _attempt(self, slot: DeviceSlot | None, kind: Any, task: TaskRecord,
                       execution_id: int) -> None:
        self._bus.publish(TaskChanged(task=task))
        deadline = time.monotonic() + task.timeout_s
        ctx = EngineRunContext(
            task=task, execution_id=execution_id, attempt=task.attempts,
            artifacts_root=self._artifacts_root, store=self._store, bus=self._bus,
            pool=self._pool, device=None, deadline=deadline,
        )
        if slot is not None and self._provider is not None:
            ctx.device = EngineDeviceHandle(self._provider, slot.serial, self._pool,
                                            ctx.cancel_event, ctx.remaining_time)
            slot.task_uid, slot.task_kind = task.uid, task.kind
            slot.task_started_at = time.time()
            slot.progress_percent = slot.progress_step = slot.progress_message = None
            slot.starts.append(time.time())
            self._devices.publish(slot)
        runner = asyncio.current_task()
        assert runner is not None
        attempt = RunningAttempt(task, execution_id, runner, ctx, slot)
        self.running[task.uid] = attempt
        try:
            outcome = await _run_kind(kind, attempt, task.timeout_s)
            self.running.pop(task.uid, None)
            status = await self._record(attempt, ctx, outcome)
        finally:
            self.running.pop(task.uid, None)
            if slot is not None:
                slot.task_uid = slot.task_kind = slot.task_started_at = None
                slot.progress_percent = slot.progress_step = slot.progress_message = None
        if slot is not None:
            slot.last_result = status
            self._devices.publish(slot)

    async def _record(self, attempt: RunningAttempt, ctx: EngineRunContext,
                      outcome: Outcome) -> str:
        """Store the attempt's outcome; returns the execution status recorded."""

        task, ex_id = attempt.task, attempt.execution_id
        meta = ctx.final_metadata()
        meta["worker"] = self.owner  # which engine ran it (several may share a database)
        serial = attempt.slot.serial if attempt.slot else None
        status, error = ExecStatus.FAILURE, None
        try:
            if not outcome.cancelled and outcome.error is None:
                status = ExecStatus.SUCCESS
                updated = await self.ops.complete(task.uid, ex_id, _jsonable(outcome.result),
                                                  meta, running=task)
            elif attempt.reason == "lease_lost":
                log.warning("task %s lost its lease while running", task.uid)
                return "failure"
            elif attempt.reason == "cancelled":
                status = ExecStatus.REVOKED
                updated = await self.ops.revoke(task.uid, ex_id, "cancelled by operator")
            elif attempt.reason == "shutdown":
                error = SHUTDOWN_ERROR
                updated = await self.ops.interrupt(task.uid, ex_id, error=error, metadata=meta,
                                                   reason="shutdown")
            else:
                error, kwargs = _failure(attempt, outcome)
                updated = await self.ops.fail(task.uid, ex_id, error=error, metadata=meta,
                                              **kwargs)
        except ConflictError as exc:  # the row moved on (reaped, cancelled elsewhere)
            log.warning("outcome of %s not recorded: %s", task.uid, exc)
            return "failure"
        self._bus.publish(TaskChanged(task=updated))
        self._bus.publish(ExecutionFinished(task_uid=task.uid, execution_id=ex_id,
                                            status=status.value, serial=serial, error=error))
        return status.value.lower()

    async def _skip(self, task: TaskRecord) -> None:

        try:
            started, execution = await self.ops.start(task.uid)
            updated = await self.ops.complete(task.uid, execution.id, SKIPPED_RESULT,
                                              {"skipped": True})
        except ConflictError:
            return
        self._bus.publish(TaskChanged(task=updated))

    async def _fail_unstarted(self, task: TaskRecord, error: str) -> None:

        try:
            started, execution = await self.ops.start(task.uid)
            updated = await self.ops.fail(task.uid, execution.id, error=error,
                                          reason="unknown_kind", retryable=False)
        except ConflictError:
            return
        self._bus.publish(TaskChanged(task=updated))

    async def _quietly(self, fn: Any, *args: Any) -> None:
        try:
            await self._store.call(fn, *args)
        except Exception:
            log.exception("store call %s failed", getattr(fn, "__name__", fn))


async def _run_kind(kind: Any, attempt: RunningAttempt, timeout_s: float) -> Outcome:
    """Run the kind's coroutine in this (the job's) task until it ends; past
    ``timeout_s`` it is interrupted with reason ``timeout``. The kind runs inline rather
    than in a task of its own: a task and the wait for it cost more than all the rest of
    a short attempt's bookkeeping."""
    loop = asyncio.get_running_loop()
    timer = loop.call_later(timeout_s, attempt.interrupt, "timeout")
    outcome = Outcome()
    try:
        outcome.result = await kind.run(attempt.ctx, dict(attempt.task.payload))
    except asyncio.CancelledError as exc:
        if attempt.reason is None:
            raise  # the job itself is being cancelled, not the attempt
        outcome.cancelled, outcome.error = True, exc
    except Exception as exc:
        outcome.error = exc
    finally:
        attempt.live = False
        timer.cancel()
    if attempt.reason is not None:
        attempt.runner.uncancel()  # the interrupt is handled; the job goes on
        if not outcome.cancelled:
            log.warning("task %s (%s) ended on its own after it was interrupted (%s)",
                        attempt.task.uid, attempt.task.kind, attempt.reason)
    return outcome


def _failure(attempt: RunningAttempt, outcome: Outcome) -> tuple[str, dict[str, Any]]:
    task = attempt.task
    if attempt.reason == "timeout":
        return f"timed out after {task.timeout_s:g} s", {"reason": "timeout"}
    if attempt.reason == "device_lost":
        return ("device lost: it disconnected and did not come back in time",
                {"reason": "device_lost", "retry_delay": 0.0})
    if outcome.cancelled:
        return "the attempt was cancelled", {"reason": attempt.reason or "cancelled"}
    exc = outcome.error
    assert exc is not None
    tb = "".join(traceback.format_exception(exc))
    if isinstance(exc, DeviceGoneError):
        return (f"device lost: {exc}",
                {"reason": "device_lost", "retry_delay": 0.0, "traceback": tb})
    if isinstance(exc, CommandTimeoutError):
        return f"device command timed out: {exc}", {"reason": "timeout", "traceback": tb}
    message = str(exc) or type(exc).__name__
    if isinstance(exc, PermanentError | TaskDeskError):
        return message, {"reason": "error", "retryable": False, "traceback": tb}
    return f"{type(exc).__name__}: {message}", {"reason": "error", "traceback": tb}


_check_json = json.JSONEncoder().encode  # one encoder, not one per call (json.dumps)


def _jsonable(value: Any) -> Any:
    """``value`` if it is JSON, else its JSON form with anything else as text."""
    if value is None or type(value) in (str, bool, int):
        return value
    try:
        _check_json(value)
        return value
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=str))


__all__ = ["JobRunner", "RunningAttempt", "SKIPPED_RESULT"]
