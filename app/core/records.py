"""Immutable snapshots of stored rows, handed between layers and threads.

Repository functions return these, never live ORM rows, so a record read on the
store thread can be used safely on the event loop or in the GUI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from app.core.clock import iso, now
from app.core.enums import (
    DeviceState,
    ExecStatus,
    HolderKind,
    Priority,
    TaskState,
)
from app.core.targets import Target

R = TypeVar("R")


def assemble(cls: type[R], fields: dict[str, Any]) -> R:
    """An instance of the frozen dataclass ``cls`` holding ``fields``, which must name
    every field, each already of its declared type.

    For the store's hot path: a frozen dataclass's ``__init__`` pays one
    ``object.__setattr__`` per field (about 10 µs for a ``TaskRecord``), and every task
    becomes a record four times on its way through the engine. The result is equal
    to ``cls(**fields)`` (tests hold them to it).
    """
    record = object.__new__(cls)
    record.__dict__.update(fields)
    return record


def amended(record: R, **changes: Any) -> R:
    """``dataclasses.replace`` for records whose changed fields need no ``__post_init__``
    nor conversion: a copy of ``record`` with ``changes``, at a tenth of the cost."""
    if not changes.keys() <= record.__dict__.keys():
        raise TypeError(f"{type(record).__name__} has no field(s) "
                        f"{sorted(changes.keys() - record.__dict__.keys())}")
    copy = object.__new__(type(record))
    copy.__dict__.update(record.__dict__, **changes)
    return copy


@dataclass(frozen=True)
class TaskRecord:
    id: int
    uid: str
    kind: str
    payload: dict[str, Any]
    queue: str
    priority: Priority
    target: Target
    state: TaskState
    attempts: int
    max_attempts: int
    timeout_s: float
    created_at: float
    updated_at: float
    source: str = "api"
    created_by: str = ""
    not_before: float | None = None
    dedupe_key: str | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    device_serial: str | None = None
    agent_uuid: str | None = None
    last_error: str | None = None
    result: Any = None
    cancel_requested: bool = False
    finished_at: float | None = None
    progress_percent: int | None = None
    progress_message: str | None = None

    @property
    def is_retry(self) -> bool:
        return self.attempts > 0

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.uid,
            "seq": self.id,
            "kind": self.kind,
            "payload": self.payload,
            "queue": self.queue,
            "priority": self.priority.label,
            "target": str(self.target),
            "state": self.state.value,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "timeout_s": self.timeout_s,
            "not_before": iso(self.not_before),
            "dedupe_key": self.dedupe_key,
            "source": self.source,
            "created_by": self.created_by,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "device_serial": self.device_serial,
            "agent_uuid": self.agent_uuid,
            "last_error": self.last_error,
            "result": self.result,
            "finished_at": iso(self.finished_at),
        }


@dataclass(frozen=True)
class ExecutionRecord:
    """One attempt of one task; field names follow the execution-record reference."""

    id: int
    task_id: str
    task_name: str
    module: str
    status: ExecStatus
    created_at: float
    attempt: int = 1
    device_serial: str | None = None
    agent_uuid: str | None = None
    created_by: str = ""
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    error: str | None = None
    traceback: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    started_at: float | None = None
    finished_at: float | None = None
    timeout_s: float | None = None

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else now()
        return max(0.0, end - self.started_at)

    @property
    def is_completed(self) -> bool:
        return self.status.is_terminal

    @property
    def is_running(self) -> bool:
        return self.status.is_running

    def to_api(self, *, detail: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "task_id": self.task_id,
            "task_name": self.task_name,
            "module": self.module,
            "status": self.status.value,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "created_by": self.created_by or None,
            "created_by_id": self.created_by or None,
            "created_by_username": self.created_by or None,
            "device_serial": self.device_serial,
            "agent_uuid": self.agent_uuid,
            "attempt": self.attempt,
            "metadata": self.metadata,
            "duration": self.duration,
            "is_completed": self.is_completed,
            "is_running": self.is_running,
        }
        if detail:
            out.update(
                {
                    "task_args": self.args,
                    "task_kwargs": self.kwargs,
                    "result": self.result,
                    "error": self.error,
                    "traceback": self.traceback,
                }
            )
        return out


@dataclass(frozen=True)
class LockRecord:
    name: str
    owner: str
    holder_kind: HolderKind
    acquired_at: float
    expires_at: float
    heartbeat_at: float
    note: str = ""

    def remaining(self, at: float | None = None) -> float:
        return max(0.0, self.expires_at - (now() if at is None else at))

    def to_api(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "holder_kind": self.holder_kind.value,
            "owner": self.owner,
            "acquired_at": iso(self.acquired_at),
            "expires_at": iso(self.expires_at),
            "heartbeat_at": iso(self.heartbeat_at),
            "ttl_remaining_s": round(self.remaining(), 1),
            "note": self.note,
        }


@dataclass(frozen=True)
class DeviceRecord:
    serial: str
    state: DeviceState
    transport: str = "usb"
    model: str = ""
    manufacturer: str = ""
    android_version: str = ""
    sdk: int | None = None
    abi: str = ""
    usb_path: str = ""
    nickname: str = ""
    tags: tuple[str, ...] = ()
    notes: str = ""
    maintenance: bool = False
    battery_level: int | None = None
    battery_temp: float | None = None
    charging: bool | None = None
    first_seen: float | None = None
    last_seen: float | None = None
    last_error: str | None = None

    def to_api(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "state": self.state.value,
            "transport": self.transport,
            "model": self.model,
            "manufacturer": self.manufacturer,
            "android_version": self.android_version,
            "sdk": self.sdk,
            "abi": self.abi,
            "usb_path": self.usb_path,
            "nickname": self.nickname,
            "tags": list(self.tags),
            "notes": self.notes,
            "maintenance": self.maintenance,
            "battery_level": self.battery_level,
            "battery_temp": self.battery_temp,
            "charging": self.charging,
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "last_error": self.last_error,
        }
