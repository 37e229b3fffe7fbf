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
import logging
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from app.core.enums import ExecStatus, HolderKind
from app.core.errors import ConflictError, ValidationError
from app.core.records import ExecutionRecord, TaskRecord
from app.devices.base import DeviceProvider
from app.engine.attempt import Outcome, RunningAttempt, failure, jsonable, run_kind
from app.engine.bus import EventBus, ExecutionFinished, TaskChanged
from app.engine.devicehandle import EngineDeviceHandle
from app.engine.devicepool import DevicePool, DeviceSlot
from app.engine.kinds.registry import KindRegistry
from app.engine.runcontext import EngineRunContext
from app.engine.storethread import StoreThread
from app.engine.taskops import TaskOps

log = logging.getLogger(__name__)

SKIPPED_RESULT = {"success": False, "status": "skipped", "reason": "task_already_running"}
SHUTDOWN_ERROR = "interrupted: TaskDesk was shut down during the attempt"


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
            # No reference back to ctx (it holds the handle): no cycle for the collector.
            ctx.device = EngineDeviceHandle(self._provider, slot.serial, self._pool,
                                            ctx.cancel_event,
                                            lambda: max(0.0, deadline - time.monotonic()))
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
            outcome = await run_kind(kind, attempt, task.timeout_s)
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
                updated = await self.ops.complete(task.uid, ex_id, jsonable(outcome.result),
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
                error, kwargs = failure(attempt, outcome)
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


__all__ = ["JobRunner", "RunningAttempt", "SKIPPED_RESULT"]
