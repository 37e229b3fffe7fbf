"""Domain vocabularies shared by every layer.

Values are the strings stored in the database and shown in APIs, so they never
change once released.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Priority(IntEnum):
    """Task priority; a higher value is dispatched first."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    CRITICAL = 3

    @classmethod
    def parse(cls, value: str | int | Priority) -> Priority:
        """Accept a name (``"high"``), a number (``2``) or a member."""
        if isinstance(value, Priority):
            return value
        from app.core.errors import ValidationError

        if isinstance(value, bool):
            raise ValidationError(f"invalid priority {value!r}", field="priority")
        if isinstance(value, int):
            try:
                return cls(value)
            except ValueError:
                pass
        elif isinstance(value, str):
            text = value.strip().lower()
            for member in cls:
                if member.name.lower() == text:
                    return member
            if text.isdigit():
                return cls.parse(int(text))
        names = ", ".join(m.name.lower() for m in cls)
        raise ValidationError(f"invalid priority {value!r}: use one of {names}", field="priority")

    @property
    def label(self) -> str:
        return self.name.lower()


class TaskState(StrEnum):
    """Lifecycle of a queued task (see docs/architecture.md)."""

    PENDING = "pending"
    CLAIMED = "claimed"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # failed for good without using up attempts (non-retryable error)
    CANCELLED = "cancelled"
    DEAD = "dead"  # every attempt failed

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_TASK_STATES

    @property
    def is_active(self) -> bool:
        return self in (TaskState.CLAIMED, TaskState.RUNNING)


TERMINAL_TASK_STATES = frozenset(
    {TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED, TaskState.DEAD}
)


class ExecStatus(StrEnum):
    """Status of one execution (one attempt), in Celery's vocabulary."""

    PENDING = "PENDING"
    STARTED = "STARTED"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    RETRY = "RETRY"
    REVOKED = "REVOKED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_EXEC_STATUSES

    @property
    def is_running(self) -> bool:
        return self in (ExecStatus.STARTED, ExecStatus.RETRY)


TERMINAL_EXEC_STATUSES = frozenset({ExecStatus.SUCCESS, ExecStatus.FAILURE, ExecStatus.REVOKED})

# Allowed execution transitions. A terminal row never changes status again.
EXEC_TRANSITIONS: dict[ExecStatus, frozenset[ExecStatus]] = {
    ExecStatus.PENDING: frozenset(
        {ExecStatus.STARTED, ExecStatus.SUCCESS, ExecStatus.FAILURE, ExecStatus.REVOKED,
         ExecStatus.RETRY}
    ),
    ExecStatus.STARTED: frozenset(
        {ExecStatus.STARTED, ExecStatus.SUCCESS, ExecStatus.FAILURE, ExecStatus.REVOKED,
         ExecStatus.RETRY}
    ),
    ExecStatus.RETRY: frozenset(
        {ExecStatus.STARTED, ExecStatus.RETRY, ExecStatus.SUCCESS, ExecStatus.FAILURE,
         ExecStatus.REVOKED}
    ),
    ExecStatus.SUCCESS: frozenset(),
    ExecStatus.FAILURE: frozenset(),
    ExecStatus.REVOKED: frozenset(),
}


class DeviceState(StrEnum):
    """Connection state as the adb server reports it."""

    ONLINE = "online"  # adb "device"
    OFFLINE = "offline"
    UNAUTHORIZED = "unauthorized"
    ABSENT = "absent"  # no longer listed

    @classmethod
    def from_adb(cls, adb_state: str) -> DeviceState:
        if adb_state == "device":
            return cls.ONLINE
        if adb_state == "unauthorized":
            return cls.UNAUTHORIZED
        if adb_state in ("absent", "removed"):
            return cls.ABSENT
        return cls.OFFLINE


class DispatchState(StrEnum):
    """How the dispatcher sees a device."""

    IDLE = "idle"
    BUSY = "busy"
    HELD = "held"
    MAINTENANCE = "maintenance"
    UNAVAILABLE = "unavailable"


class TargetKind(StrEnum):
    ANY = "any"  # any idle device
    DEVICE = "device"  # one serial
    SELECTOR = "selector"  # devices matching tags/model
    AGENT = "agent"  # a remote agent uuid
    HOST = "host"  # the console host itself


class HolderKind(StrEnum):
    TASK = "task"
    OPERATOR = "operator"
    SCHEDULE = "schedule"
    SYSTEM = "system"


class ScheduleStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DELETED = "deleted"


class ScheduleKind(StrEnum):
    CRON = "cron"
    INTERVAL = "interval"
    ONCE = "once"


class GoalStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETE = "complete"
    TIMEOUT = "timeout"
    WAITING_FOR_SESSION = "waiting_for_session"

    @property
    def is_terminal(self) -> bool:
        return self in (GoalStatus.COMPLETE, GoalStatus.TIMEOUT)


class GoalKind(StrEnum):
    COUNT = "count"
    LLM = "llm"


class AlertSeverity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
