"""The engine: one object that owns the store thread, devices, dispatcher and jobs.

It runs in whatever asyncio loop it is started in (qasync in the console, a
plain loop for ``taskdesk serve``). Observers use ``bus`` and the async methods
below; nothing outside the engine reaches into its parts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import time
from typing import Any

from app.core.enums import AlertSeverity, HolderKind, Priority, TaskState
from app.core.errors import NotFoundError, ValidationError
from app.core.paths import Paths
from app.core.records import DeviceRecord, LockRecord, TaskRecord
from app.core.taskspec import TaskSpec
from app.devices.base import DeviceProvider
from app.engine.alerts import AlertService
from app.engine.background import Background, every
from app.engine.bus import (
    AdbServerState,
    DeviceView,
    EngineState,
    Event,
    EventBus,
    LockChanged,
    QueueChanged,
    TaskChanged,
)
from app.engine.config import EngineConfig
from app.engine.devicepool import DevicePool, DeviceSlot
from app.engine.dispatcher import Dispatcher
from app.engine.jobs import JobRunner
from app.engine.kinds.registry import KindRegistry, default_registry
from app.engine.maintenance import Maintenance
from app.engine.recovery import dead_owners, instance_id
from app.engine.storethread import StoreThread

log = logging.getLogger(__name__)

SHUTDOWN_WAIT_S = 15.0
# A bulk submit validates in slices this long, yielding to the loop between them: a
# 10,000-row import costs the console a few frames' worth of hiccups, not a freeze.
VALIDATE_SLICE_S = 0.004


class Engine:
    def __init__(
        self,
        *,
        paths: Paths,
        config: EngineConfig | None = None,
        provider: DeviceProvider | None = None,
        registry: KindRegistry | None = None,
        database: str | None = None,
        host_enabled: bool = True,
    ) -> None:
        self.paths = paths.ensure()
        base = config or EngineConfig()
        self.config = dataclasses.replace(base, instance_id=instance_id(self.paths.data_dir))
        self.owner = self.config.owner_token()
        self.registry = registry or default_registry()
        self.provider = provider
        self.bus = EventBus()
        self.store = StoreThread(database or self.paths.database, self.paths.backups)
        self.alerts = AlertService(self.store, self.bus)
        self.bus.subscribe(self._on_adb_state, (AdbServerState,))
        self.state = "stopped"
        self._host_enabled = host_enabled
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.config.device_workers, thread_name_prefix="device")
        self._background = Background()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._data_version: int | None = None
        self.devices: DevicePool
        self.jobs: JobRunner
        self.dispatcher: Dispatcher
        self.maintenance: Maintenance

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._set_state("starting")
        await loop.run_in_executor(self._pool, self.store.start)
        self.devices = DevicePool(
            provider=self.provider, store=self.store, bus=self.bus, pool=self._pool, loop=loop,
            grace_s=self.config.device_lost_grace_s,
            battery_interval_s=self.config.battery_interval_s,
            on_idle=self._wake, on_lost=self._device_lost,
        )
        self.jobs = JobRunner(
            owner=self.owner, store=self.store, bus=self.bus, registry=self.registry,
            provider=self.provider, pool=self._pool, devices=self.devices,
            artifacts_root=self.paths.artifacts,
        )
        self.dispatcher = Dispatcher(
            config=self.config, owner=self.owner, store=self.store, devices=self.devices,
            jobs=self.jobs, loop=loop, host_enabled=self._host_enabled,
        )
        self.maintenance = Maintenance(config=self.config, store=self.store, owner=self.owner,
                                       on_reaped=self._on_reaped)
        await self._recover()
        await self.devices.start()
        bg, cfg = self._background, self.config
        bg.start("dispatcher", self.dispatcher.run())
        bg.start("lease-renewal", every(cfg.lease_s / 3, self._renew_leases,
                                        name="lease-renewal"))
        bg.start("lease-reaper", every(max(1.0, cfg.lease_s / 2), self.maintenance.reap_leases,
                                       name="lease-reaper"))
        bg.start("external-writes", every(cfg.external_poll_s, self._check_external_writes,
                                          name="external-writes"))
        bg.start("retention-cleanup", self.maintenance.run_cron(
            "retention", cfg.cleanup_cron, self.maintenance.retention_cleanup))
        bg.start("timeout-sweep", self.maintenance.run_cron(
            "timeout-sweep", cfg.timeout_sweep_cron, self.maintenance.timeout_sweep))
        self._set_state("running")
        self._wake()

    async def stop(self) -> None:
        """Hand running work back to the queue and close everything, in order."""
        if self.state in ("stopping", "stopped"):
            return
        self._set_state("stopping")
        self.dispatcher.stop()
        self.jobs.begin_shutdown()
        jobs = list(self.dispatcher.job_tasks)
        if jobs:
            await asyncio.wait(jobs, timeout=SHUTDOWN_WAIT_S)
        await self._background.cancel_all()
        await self.devices.stop()
        await self._release_held()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self.store.stop)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._set_state("stopped")

    # -- tasks --------------------------------------------------------------------------
    def validate(self, spec: TaskSpec) -> TaskSpec:
        """Kind-aware validation; raises ValidationError and changes nothing."""
        return self.registry.validate(spec)  # includes spec.validated()

    async def submit(self, spec: TaskSpec) -> TaskRecord:
        from app.store import tasks

        record = await self.store.call(tasks.enqueue, self.validate(spec))
        self.bus.publish(TaskChanged(task=record))
        self._wake()
        return record

    async def submit_many(self, specs: list[TaskSpec]) -> list[TaskRecord]:
        from app.store import tasks

        checked = []
        slice_ends = time.perf_counter() + VALIDATE_SLICE_S
        for index, spec in enumerate(specs):
            try:
                checked.append(self.validate(spec))
            except ValidationError as exc:
                raise ValidationError(f"task #{index + 1}: {exc.message}", field=exc.field) from exc
            if time.perf_counter() > slice_ends:
                await asyncio.sleep(0)
                slice_ends = time.perf_counter() + VALIDATE_SLICE_S
        records = await self.store.call(tasks.enqueue_many, checked)
        for record in records:
            self.bus.publish(TaskChanged(task=record))
        self._wake()
        return records

    async def get_task(self, uid: str) -> TaskRecord:
        from app.store import tasks

        return await self.store.call(tasks.get_task, uid)

    async def cancel(self, uid: str, *, actor: str = "") -> TaskRecord:
        from app.store import audit, tasks

        record = await self.store.call(tasks.request_cancel, uid, actor=actor)
        await self.store.call(audit.audit, actor or "unknown", "task.cancel", uid)
        if record.state is TaskState.RUNNING:
            self.jobs.interrupt(uid, "cancelled")
        self.bus.publish(TaskChanged(task=record))
        return record

    async def retry(self, uid: str, *, actor: str = "", source: str = "gui") -> TaskRecord:
        """Enqueue a fresh copy of a finished task (its history stays as it was)."""
        old = await self.get_task(uid)
        if not old.state.is_terminal:
            raise ValidationError(f"task {uid} is still {old.state.value}; cancel it first")
        return await self.submit(TaskSpec(
            kind=old.kind, payload=old.payload, queue=old.queue, priority=old.priority,
            target=old.target, max_attempts=old.max_attempts, timeout_s=old.timeout_s,
            dedupe_key=old.dedupe_key, source=source, created_by=actor or old.created_by,
        ))

    async def set_priority(self, uid: str, priority: Priority | str) -> TaskRecord:
        from app.store import tasks

        record = await self.store.call(tasks.set_priority, uid, Priority.parse(priority))
        self.bus.publish(TaskChanged(task=record))
        self._wake()
        return record

    async def set_queue_paused(self, name: str, paused: bool, *, actor: str = "") -> None:
        from app.store import audit, queues

        await self.store.call(queues.ensure_queue, name)
        await self.store.call(queues.set_paused, name, paused)
        await self.store.call(audit.audit, actor or "unknown",
                              "queue.pause" if paused else "queue.resume", name)
        self.bus.publish(QueueChanged(queue=name))
        self._wake()

    async def set_queue_concurrency(self, name: str, limit: int) -> None:
        from app.store import queues

        await self.store.call(queues.ensure_queue, name)
        await self.store.call(queues.set_concurrency, name, limit)
        self.bus.publish(QueueChanged(queue=name))
        self._wake()

    # -- devices ----------------------------------------------------------------------
    def device_views(self) -> list[DeviceView]:
        return self.devices.views()

    def device_counts(self) -> dict[str, int]:
        """Devices per dispatch state (``idle``, ``busy``...), without building views."""
        return self.devices.dispatch_counts()

    def _slot(self, serial: str) -> DeviceSlot:
        slot = self.devices.slots.get(serial)
        if slot is None:
            raise NotFoundError(f"no device {serial!r}")
        return slot

    async def hold_device(self, serial: str, operator: str, note: str = "",
                          ttl_s: float = 8 * 3600) -> LockRecord:
        """An operator lock: the dispatcher and automations leave the device alone."""
        from app.store import audit, locks

        slot = self._slot(serial)
        owner = f"operator:{operator}"
        lock = await self.store.call(locks.acquire, f"device:{serial}", owner,
                                     holder_kind=HolderKind.OPERATOR, ttl_s=ttl_s, note=note)
        if lock is None:
            current = await self.store.call(locks.get_lock, f"device:{serial}")
            holder = current.owner if current else "someone else"
            raise ValidationError(f"device {serial} is already held by {holder}")
        await self.store.call(audit.audit, operator, "device.hold", serial, {"note": note})
        slot.held_by = owner
        self.devices.publish(slot)
        self.bus.publish(LockChanged(lock_name=lock.name, lock=lock))
        return lock

    async def release_device(self, serial: str, operator: str) -> None:
        from app.store import audit, locks

        slot = self._slot(serial)
        name = f"device:{serial}"
        released = await self.store.call(locks.release, name, f"operator:{operator}")
        if not released and slot.held_by:
            await self.store.call(locks.force_release, name, actor=operator,
                                  reason="released from the console")
        await self.store.call(audit.audit, operator, "device.release", serial)
        slot.held_by = None
        self.devices.publish(slot)
        self.bus.publish(LockChanged(lock_name=name, lock=None))
        self._wake()

    async def set_maintenance(self, serial: str, on: bool, *, actor: str = "") -> DeviceRecord:
        return await self.update_device(serial, maintenance=on, actor=actor)

    async def update_device(self, serial: str, *, actor: str = "", **fields: Any) -> DeviceRecord:
        from app.store import audit
        from app.store import devices as device_store

        slot = self._slot(serial)
        record = await self.store.call(device_store.update_device, serial, **fields)
        await self.store.call(audit.audit, actor or "unknown", "device.update", serial,
                              {k: v for k, v in fields.items() if k != "notes"})
        slot.record = dataclasses.replace(record, state=slot.record.state)
        self.devices.publish(slot)
        self._wake()
        return slot.record

    # -- locks --------------------------------------------------------------------------
    async def force_release_lock(self, name: str, *, actor: str, reason: str = "") -> None:
        from app.store import locks

        await self.store.call(locks.force_release, name, actor=actor, reason=reason)
        if name.startswith("device:"):
            slot = self.devices.slots.get(name[len("device:"):])
            if slot is not None:
                slot.held_by = None
                self.devices.publish(slot)
        self.bus.publish(LockChanged(lock_name=name, lock=None))
        self._wake()

    # -- internals ----------------------------------------------------------------------
    def _wake(self) -> None:
        if self.state in ("running", "starting") and hasattr(self, "dispatcher"):
            self.dispatcher.wake()

    def _set_state(self, state: str, message: str = "") -> None:
        self.state = state
        log.info("engine %s %s", state, message)
        self.bus.publish(EngineState(state=state, message=message))

    def _device_lost(self, slot: DeviceSlot) -> None:
        self.jobs.interrupt_device(slot.serial, "device_lost")
        name = slot.record.nickname or slot.record.model or slot.serial
        self._alert("device_lost", f"{name} ({slot.serial}) disconnected during a task and "
                    "did not come back; the task goes back to the queue", subject=slot.serial)

    def _on_reaped(self, count: int) -> None:
        self._alert("lease_expired", f"{count} task(s) were taken back from a worker that "
                    "stopped renewing its lease (crashed or disconnected)",
                    subject="leases", cooldown_s=300)
        self._wake()

    def _on_adb_state(self, event: Event) -> None:
        assert isinstance(event, AdbServerState)
        if not event.alive and self.state == "running":
            self._alert("adb_server_down", f"the adb server does not answer: {event.message}",
                        subject="adb", severity=AlertSeverity.ERROR, cooldown_s=600)

    def _alert(self, kind: str, message: str, *, subject: str = "",
               severity: AlertSeverity = AlertSeverity.WARNING,
               cooldown_s: float = 1800.0) -> None:
        self._background.start(f"alert-{kind}-{subject}", self.alerts.raise_alert(
            kind, message, subject=subject, severity=severity, cooldown_s=cooldown_s))

    async def _recover(self) -> None:
        from app.store import tasks

        active = await self.store.call(tasks.list_tasks,
                                       states=[TaskState.CLAIMED, TaskState.RUNNING],
                                       limit=100_000)
        owners = {t.lease_owner for t in active if t.lease_owner}
        for owner in dead_owners(owners, self.config.owner_prefix(), self.owner):
            back = await self.store.call(tasks.reap_expired, owner_prefix=owner,
                                         live_owner=self.owner)
            log.warning("recovered %d task(s) left by a stopped engine (%s)", len(back), owner)
        await self.maintenance.reap_leases()

    async def _renew_leases(self) -> None:
        from app.store import tasks

        held = list(self.jobs.held)
        if not held:
            return
        lost = await self.store.call(tasks.renew_leases, self.owner, held,
                                     lease_s=self.config.lease_s)
        for uid in lost:
            self.jobs.held.discard(uid)
            self.jobs.interrupt(uid, "lease_lost")
        running = list(self.jobs.running)
        if running:
            flagged = await self.store.call(_cancel_requested, running)
            for uid in flagged:
                self.jobs.interrupt(uid, "cancelled")

    async def _check_external_writes(self) -> None:
        """Another process (the CLI, a second workstation) may have enqueued work."""
        if not self.devices.idle_slots() and not self._host_enabled:
            return
        version = await self.store.call(_data_version)
        if version is None or version != self._data_version:
            self._data_version = version
            self._wake()

    async def _release_held(self) -> None:
        from app.store import tasks

        for uid in list(self.jobs.held):
            try:
                await self.store.call(tasks.release, uid, self.owner)
            except Exception as exc:  # already moved on
                log.debug("release of %s at shutdown: %s", uid, exc)
        self.jobs.held.clear()

    async def wait_until(self, predicate: Any, timeout: float = 30.0,
                         interval: float = 0.05) -> bool:
        """Poll ``predicate()`` (sync or async) until true; for tools and tests."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return True
            await asyncio.sleep(interval)
        return False


def _cancel_requested(uids: list[str]) -> list[str]:
    from app.store.models import Task

    rows = Task.select(Task.uid).where(Task.uid.in_(uids), Task.cancel_requested == True)  # noqa: E712
    return [row.uid for row in rows]


def _data_version() -> int | None:
    from app.store.db import database_proxy, is_postgres

    if is_postgres():
        return None
    row = database_proxy.obj.execute_sql("PRAGMA data_version").fetchone()
    return int(row[0]) if row else None

