"""The dispatcher: hands pending tasks to idle devices and to the host.

It sleeps until something could change the answer (a task enqueued, a device
became idle, a job finished, a lease expired, a retry's ``not_before`` came due,
another process wrote to the store) and then claims, in one store transaction,
work for every idle slot at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from app.core.enums import DispatchState
from app.core.records import TaskRecord
from app.engine.config import EngineConfig
from app.engine.devicepool import DevicePool
from app.engine.jobs import JobRunner
from app.engine.storethread import StoreThread

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        *,
        config: EngineConfig,
        owner: str,
        store: StoreThread,
        devices: DevicePool,
        jobs: JobRunner,
        loop: asyncio.AbstractEventLoop,
        host_enabled: bool = True,
    ) -> None:
        self._config = config
        self._owner = owner
        self._store = store
        self._devices = devices
        self._jobs = jobs
        self._loop = loop
        self._host_enabled = host_enabled
        self._wake = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._job_tasks: set[asyncio.Task[None]] = set()
        self._host_jobs = 0
        self._stopping = False
        self.claims = 0

    def wake(self) -> None:
        self._wake.set()

    @property
    def job_tasks(self) -> set[asyncio.Task[None]]:
        return self._job_tasks

    async def run(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            if self._stopping:
                break
            try:
                await self._dispatch_once()
            except Exception:
                log.exception("dispatch pass failed; retrying shortly")
                await asyncio.sleep(0.5)
                self.wake()

    def stop(self) -> None:
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
        self._wake.set()

    async def _dispatch_once(self) -> None:
        from app.store import tasks as task_store

        now = time.time()
        slots: list[Any] = []
        rate_wait: float | None = None
        for slot in self._devices.idle_slots():
            capacity = self._config.max_tasks_per_job
            allowed = slot.rate_capacity(self._config.rate_limit_per_device,
                                         self._config.rate_window_s, now)
            if allowed == 0:
                oldest = slot.starts[0] + self._config.rate_window_s
                rate_wait = oldest if rate_wait is None else min(rate_wait, oldest)
                continue
            if allowed is not None:
                capacity = min(capacity, allowed)
            slots.append(task_store.Slot(serial=slot.serial, tags=slot.record.tags,
                                         model=slot.record.model or None, capacity=capacity))
        host_free = self._config.host_concurrency - self._host_jobs
        if self._host_enabled and host_free > 0:
            slots.append(task_store.Slot(serial=None, host=True, capacity=host_free))
        if rate_wait is not None:
            self._schedule(rate_wait)
        if not slots:
            return
        claimed, started = await self._store.call(task_store.claim_and_start, self._owner,
                                                  slots, lease_s=self._config.lease_s)
        self.claims += 1
        got_any = bool(started)
        for task, execution in started:
            self._start_host_job(self._jobs.run_started(task, execution))
        for key, tasks in claimed.items():
            if not tasks:
                continue
            got_any = True
            if key == task_store.HOST_KEY or key is None:
                for task in tasks:
                    self._start_host_job(self._jobs.run_job(None, [task]))
            else:
                self._start_device_job(str(key), tasks)
        if got_any:
            self.wake()  # more work may be claimable for slots still idle
        hint = await self._store.call(task_store.pending_wakeup_hint)
        if hint is not None:
            self._schedule(hint)

    def _start_device_job(self, serial: str, tasks: list[TaskRecord]) -> None:
        slot = self._devices.slots.get(serial)
        if slot is None or slot.dispatch is not DispatchState.IDLE:
            self._release(tasks)  # the device changed while we were claiming
            return
        job = self._spawn(self._jobs.run_job(slot, tasks), lambda: self._job_done(slot.serial))
        slot.job = job
        self._devices.publish(slot)

    def _start_host_job(self, job: Coroutine[Any, Any, None]) -> None:
        self._host_jobs += 1

        def done() -> None:
            self._host_jobs -= 1
            self.wake()

        self._spawn(job, done)

    def _job_done(self, serial: str) -> None:
        slot = self._devices.slots.get(serial)
        if slot is not None:
            slot.job = None
            self._devices.publish(slot)
        self.wake()

    def _spawn(self, coro: Any, on_done: Callable[[], None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = self._loop.create_task(coro)
        self._job_tasks.add(task)

        def finished(t: asyncio.Task[None]) -> None:
            self._job_tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("job failed", exc_info=t.exception())
            on_done()

        task.add_done_callback(finished)
        return task

    def _release(self, tasks: list[TaskRecord]) -> None:
        from app.store import tasks as task_store

        async def release() -> None:
            for task in tasks:
                try:
                    await self._store.call(task_store.release, task.uid, self._owner)
                except Exception:
                    log.exception("could not release %s", task.uid)
            self.wake()

        self._spawn(release(), lambda: None)

    def _schedule(self, at: float) -> None:
        """Wake at epoch time ``at`` (keeps only the earliest pending timer)."""
        if self._timer is not None and self._timer_at <= at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        delay = max(0.0, at - time.time()) + 0.005

        def fire() -> None:
            self._timer = None
            self.wake()

        self._timer = self._loop.call_later(delay, fire)
