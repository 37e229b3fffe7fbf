"""The engine's live view of devices.

Provider callbacks arrive on the tracking thread and are moved onto the loop.
Each device has one ``DeviceSlot``: its stored record, whether an operator holds
it, and the job running on it. A device that drops while busy gets a grace
window (it may come back) before its job is cancelled as ``device_lost``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from app.core.enums import DeviceState, DispatchState
from app.core.records import DeviceRecord
from app.devices.base import DeviceInfo, DeviceProvider, ServerInfo
from app.engine.bus import AdbServerState, DeviceChanged, DeviceView, EventBus
from app.engine.storethread import StoreThread

log = logging.getLogger(__name__)


@dataclass
class DeviceSlot:
    record: DeviceRecord
    held_by: str | None = None
    job: asyncio.Task[None] | None = None
    task_uid: str | None = None
    task_kind: str | None = None
    task_started_at: float | None = None
    progress_percent: int | None = None
    progress_step: str | None = None
    progress_message: str | None = None
    last_result: str | None = None
    lost_at: float | None = None
    lost_timer: asyncio.TimerHandle | None = None
    starts: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))

    @property
    def serial(self) -> str:
        return self.record.serial

    @property
    def online(self) -> bool:
        return self.record.state is DeviceState.ONLINE

    @property
    def dispatch(self) -> DispatchState:
        if self.job is not None:
            return DispatchState.BUSY
        if not self.online:
            return DispatchState.UNAVAILABLE
        if self.record.maintenance:
            return DispatchState.MAINTENANCE
        if self.held_by:
            return DispatchState.HELD
        return DispatchState.IDLE

    def view(self) -> DeviceView:
        return DeviceView(
            record=self.record,
            dispatch=self.dispatch.value,
            task_uid=self.task_uid,
            task_kind=self.task_kind,
            task_started_at=self.task_started_at,
            progress_percent=self.progress_percent,
            progress_step=self.progress_step,
            progress_message=self.progress_message,
            held_by=self.held_by,
            last_result=self.last_result,
        )

    def rate_capacity(self, limit: int, window_s: float, now: float) -> int | None:
        """Starts still allowed in the current window (None = no limit)."""
        if limit <= 0:
            return None
        while self.starts and self.starts[0] < now - window_s:
            self.starts.popleft()
        return max(0, limit - len(self.starts))


class DevicePool:
    def __init__(
        self,
        *,
        provider: DeviceProvider | None,
        store: StoreThread,
        bus: EventBus,
        pool: concurrent.futures.Executor,
        loop: asyncio.AbstractEventLoop,
        grace_s: float,
        battery_interval_s: float,
        on_idle: Callable[[], None],
        on_lost: Callable[[DeviceSlot], None],
    ) -> None:
        self.provider = provider
        self.slots: dict[str, DeviceSlot] = {}
        self.server = ServerInfo(host="", port=0, alive=False, message="not started")
        self._store = store
        self._bus = bus
        self._pool = pool
        self._loop = loop
        self._grace_s = grace_s
        self._battery_interval_s = battery_interval_s
        self._on_idle = on_idle
        self._on_lost = on_lost
        self._battery_task: asyncio.Task[None] | None = None
        self._pending_writes: set[asyncio.Task[None]] = set()

    # -- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        from app.store import devices as device_store
        from app.store import locks

        records = await self._store.call(device_store.list_devices)
        held = await self._store.call(locks.list_locks)
        holders = {lk.name[len("device:"):]: lk.owner for lk in held
                   if lk.name.startswith("device:")}
        for record in records:
            # Nothing is online until the provider says so.
            if record.state is DeviceState.ONLINE:
                record = replace(record, state=DeviceState.OFFLINE)
            self.slots[record.serial] = DeviceSlot(record=record,
                                                   held_by=holders.get(record.serial))
        if self.provider is not None:
            self.provider.start(self)
            self._battery_task = self._loop.create_task(self._battery_loop(),
                                                        name="battery-refresh")

    async def stop(self) -> None:
        if self._battery_task is not None:
            self._battery_task.cancel()
            await asyncio.gather(self._battery_task, return_exceptions=True)
        if self.provider is not None:
            await self._loop.run_in_executor(self._pool, self.provider.stop)
        for slot in self.slots.values():
            if slot.lost_timer is not None:
                slot.lost_timer.cancel()
        if self._pending_writes:
            await asyncio.gather(*self._pending_writes, return_exceptions=True)

    # -- DeviceListener (called on the provider's thread) ------------------------------
    def device_changed(self, info: DeviceInfo) -> None:
        self._loop.call_soon_threadsafe(self._apply_info, info)

    def server_state_changed(self, info: ServerInfo) -> None:
        self._loop.call_soon_threadsafe(self._apply_server, info)

    # -- queries ----------------------------------------------------------------------
    def idle_slots(self) -> list[DeviceSlot]:
        return [s for s in self.slots.values() if s.dispatch is DispatchState.IDLE]

    def views(self) -> list[DeviceView]:
        return [s.view() for s in sorted(self.slots.values(), key=lambda s: s.serial)]

    def dispatch_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for slot in self.slots.values():
            state = slot.dispatch.value
            counts[state] = counts.get(state, 0) + 1
        return counts

    def publish(self, slot: DeviceSlot) -> None:
        self._bus.publish(DeviceChanged(view=slot.view()))

    # -- state changes ----------------------------------------------------------------
    def _apply_server(self, info: ServerInfo) -> None:
        changed = info.alive != self.server.alive
        self.server = info
        if changed:
            log.info("adb server %s:%s %s", info.host, info.port,
                     "is up" if info.alive else f"is down: {info.message}")
        self._bus.publish(AdbServerState(alive=info.alive, message=info.message,
                                         version=info.version))

    def _apply_info(self, info: DeviceInfo) -> None:
        now = time.time()
        slot = self.slots.get(info.serial)
        before = slot.record if slot else None
        was_online = bool(slot and slot.online)
        record = _merge(before, info, now)
        if slot is None:
            slot = self.slots[info.serial] = DeviceSlot(record=record)
        else:
            slot.record = record
        self._persist(info, now)
        if record.state is DeviceState.ONLINE:
            if slot.lost_timer is not None:
                log.info("device %s came back within its grace window", info.serial)
                slot.lost_timer.cancel()
                slot.lost_timer = None
                slot.lost_at = None
            if not was_online and slot.dispatch is DispatchState.IDLE:
                self._on_idle()
        elif was_online and slot.job is not None and slot.lost_timer is None:
            slot.lost_at = now
            log.warning("device %s went %s while busy; waiting %.0f s for it",
                        info.serial, record.state.value, self._grace_s)
            slot.lost_timer = self._loop.call_later(self._grace_s, self._grace_expired, slot)
        self.publish(slot)

    def _grace_expired(self, slot: DeviceSlot) -> None:
        slot.lost_timer = None
        if slot.online or slot.job is None:
            return
        log.warning("device %s did not come back: its job is cancelled", slot.serial)
        self._on_lost(slot)

    def _persist(self, info: DeviceInfo, now: float) -> None:
        from app.store import devices as device_store

        async def write() -> None:
            try:
                if info.state is DeviceState.ONLINE and info.model:
                    await self._store.call(
                        device_store.upsert_device, info.serial, state=info.state,
                        transport=info.transport, model=info.model,
                        manufacturer=info.manufacturer, android_version=info.android_version,
                        sdk=info.sdk, abi=info.abi, usb_path=info.usb_path, now=now,
                    )
                else:
                    record = await self._store.call(device_store.mark_state, info.serial,
                                                    info.state, now=now)
                    if record is None:
                        await self._store.call(
                            device_store.upsert_device, info.serial, state=info.state,
                            transport=info.transport, model=info.model,
                            manufacturer=info.manufacturer,
                            android_version=info.android_version, sdk=info.sdk,
                            abi=info.abi, usb_path=info.usb_path, now=now,
                        )
            except Exception:
                log.exception("could not record device %s", info.serial)

        task = self._loop.create_task(write(), name=f"device-write-{info.serial}")
        self._pending_writes.add(task)
        task.add_done_callback(self._pending_writes.discard)

    async def _battery_loop(self) -> None:
        from app.store import devices as device_store

        assert self.provider is not None
        provider = self.provider
        while True:
            await asyncio.sleep(self._battery_interval_s)
            for slot in [s for s in self.slots.values() if s.online]:
                try:
                    info = await self._loop.run_in_executor(self._pool, provider.battery,
                                                            slot.serial)
                    await self._store.call(
                        device_store.record_battery, slot.serial, level=info.level,
                        temperature=info.temperature_c, charging=info.charging,
                    )
                except Exception as exc:  # a phone may vanish between list and call
                    log.debug("battery of %s not read: %s", slot.serial, exc)
                    continue
                slot.record = replace(slot.record, battery_level=info.level,
                                      battery_temp=info.temperature_c,
                                      charging=info.charging)
                self.publish(slot)


def _merge(before: DeviceRecord | None, info: DeviceInfo, now: float) -> DeviceRecord:
    if before is None:
        return DeviceRecord(
            serial=info.serial, state=info.state, transport=info.transport, model=info.model,
            manufacturer=info.manufacturer, android_version=info.android_version,
            sdk=info.sdk, abi=info.abi, usb_path=info.usb_path, first_seen=now,
            last_seen=now,
        )
    if info.state is DeviceState.ONLINE and info.model:
        return replace(
            before, state=info.state, transport=info.transport, model=info.model,
            manufacturer=info.manufacturer, android_version=info.android_version,
            sdk=info.sdk, abi=info.abi, usb_path=info.usb_path or before.usb_path,
            last_seen=now,
        )
    return replace(before, state=info.state, last_seen=now)
