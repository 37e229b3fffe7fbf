"""peewee models: every table of the domain (see docs/architecture.md).

Conventions: timestamps are float epoch seconds (UTC); JSON is stored as text
(portable between SQLite and PostgreSQL); enums are stored as their string
values (priority as its integer, so it sorts).
"""

from __future__ import annotations

import json
from typing import Any

import peewee

from app.core.jsontext import encode_json
from app.store.db import database_proxy


class JsonField(peewee.TextField):
    """A JSON value stored as compact text."""

    _encode = staticmethod(encode_json)

    def db_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return self._encode(value)

    def python_value(self, value: Any) -> Any:
        if value is None:
            return None
        return json.loads(value)


class BaseModel(peewee.Model):
    class Meta:
        database = database_proxy
        legacy_table_names = False


class SchemaVersion(BaseModel):
    version = peewee.IntegerField(primary_key=True)
    applied_at = peewee.DoubleField()
    app_version = peewee.CharField(max_length=32, default="")


class Setting(BaseModel):
    key = peewee.CharField(max_length=128, primary_key=True)
    value = JsonField(null=True)
    updated_at = peewee.DoubleField()


class Device(BaseModel):
    serial = peewee.CharField(max_length=128, primary_key=True)
    transport = peewee.CharField(max_length=16, default="usb")  # usb | tcp | sim
    model = peewee.CharField(max_length=128, default="")
    manufacturer = peewee.CharField(max_length=128, default="")
    android_version = peewee.CharField(max_length=32, default="")
    sdk = peewee.IntegerField(null=True)
    abi = peewee.CharField(max_length=64, default="")
    usb_path = peewee.CharField(max_length=256, default="")
    nickname = peewee.CharField(max_length=128, default="")
    tags = JsonField(default=list)
    notes = peewee.TextField(default="")
    state = peewee.CharField(max_length=16, default="absent")
    maintenance = peewee.BooleanField(default=False)
    battery_level = peewee.IntegerField(null=True)
    battery_temp = peewee.DoubleField(null=True)
    charging = peewee.BooleanField(null=True)
    first_seen = peewee.DoubleField(null=True)
    last_seen = peewee.DoubleField(null=True)
    last_error = peewee.TextField(null=True)


class BatterySample(BaseModel):
    id = peewee.BigAutoField()
    serial = peewee.CharField(max_length=128)
    at = peewee.DoubleField()
    level = peewee.IntegerField(null=True)
    temperature = peewee.DoubleField(null=True)
    charging = peewee.BooleanField(null=True)

    class Meta:
        indexes = ((("serial", "at"), False),)


class Queue(BaseModel):
    name = peewee.CharField(max_length=64, primary_key=True)
    paused = peewee.BooleanField(default=False)
    concurrency = peewee.IntegerField(default=0)  # 0 = no limit
    created_at = peewee.DoubleField()


class Task(BaseModel):
    id = peewee.BigAutoField()
    uid = peewee.CharField(max_length=64, unique=True)
    kind = peewee.CharField(max_length=128)
    payload = JsonField()
    queue = peewee.CharField(max_length=64, default="default")
    priority = peewee.SmallIntegerField(default=1)
    target_kind = peewee.CharField(max_length=16, default="any")
    target_value = peewee.CharField(max_length=256, null=True)
    state = peewee.CharField(max_length=16, default="pending")
    not_before = peewee.DoubleField(null=True)
    attempts = peewee.IntegerField(default=0)
    max_attempts = peewee.IntegerField(default=3)
    timeout_s = peewee.DoubleField(default=300.0)
    dedupe_key = peewee.CharField(max_length=200, null=True)
    source = peewee.CharField(max_length=64, default="api")
    created_by = peewee.CharField(max_length=128, default="")
    created_at = peewee.DoubleField()
    updated_at = peewee.DoubleField()
    lease_owner = peewee.CharField(max_length=128, null=True)
    lease_expires_at = peewee.DoubleField(null=True)
    device_serial = peewee.CharField(max_length=128, null=True)
    agent_uuid = peewee.CharField(max_length=64, null=True)
    last_error = peewee.TextField(null=True)
    result = JsonField(null=True)
    cancel_requested = peewee.BooleanField(default=False)
    finished_at = peewee.DoubleField(null=True)
    progress_percent = peewee.SmallIntegerField(null=True)
    progress_message = peewee.CharField(max_length=256, null=True)

    class Meta:
        indexes = (
            # The claim reads pending tasks in "bands" (target group, priority,
            # fresh/retry) already ordered by created_at: these two indexes serve
            # them (app/store/claimbands.py), the first for device/agent targets.
            # (They replace the skeleton's (state, priority, created_at) and
            # (state, target_kind, target_value): every index slows each claim's
            # UPDATE, so none is kept that no query uses.)
            (("state", "target_kind", "target_value", "priority", "attempts", "created_at"),
             False),
            (("state", "target_kind", "priority", "attempts", "created_at"), False),
            (("state", "lease_expires_at"), False),
            (("state", "not_before"), False),  # the dispatcher's wake-up hint
            (("queue", "state"), False),
            (("dedupe_key",), False),
        )


class Execution(BaseModel):
    id = peewee.BigAutoField()
    task_id = peewee.CharField(max_length=64)
    task_name = peewee.CharField(max_length=128)
    module = peewee.CharField(max_length=64)
    status = peewee.CharField(max_length=16, default="PENDING")
    attempt = peewee.IntegerField(default=1)
    device_serial = peewee.CharField(max_length=128, null=True)
    agent_uuid = peewee.CharField(max_length=64, null=True)
    created_by = peewee.CharField(max_length=128, default="")
    args = JsonField(default=list)
    kwargs = JsonField(default=dict)
    result = JsonField(null=True)
    error = peewee.TextField(null=True)
    traceback = peewee.TextField(null=True)
    metadata = JsonField(default=dict)
    created_at = peewee.DoubleField()
    started_at = peewee.DoubleField(null=True)
    finished_at = peewee.DoubleField(null=True)
    timeout_s = peewee.DoubleField(null=True)

    class Meta:
        indexes = (
            (("task_id", "attempt"), True),
            (("created_at", "id"), False),
            (("status", "created_at"), False),
            (("module", "created_at"), False),
            (("task_name", "created_at"), False),
            (("device_serial", "created_at"), False),
            (("agent_uuid", "created_at"), False),
            (("created_by", "created_at"), False),
            (("status", "started_at"), False),
        )


class Lock(BaseModel):
    name = peewee.CharField(max_length=255, primary_key=True)
    owner = peewee.CharField(max_length=128)
    holder_kind = peewee.CharField(max_length=16, default="task")
    acquired_at = peewee.DoubleField()
    expires_at = peewee.DoubleField(index=True)
    heartbeat_at = peewee.DoubleField()
    note = peewee.TextField(default="")


class Schedule(BaseModel):
    id = peewee.CharField(max_length=64, primary_key=True)
    title = peewee.CharField(max_length=200)
    template = JsonField()  # {kind, payload, target, queue, priority, max_attempts, timeout_s}
    schedule_kind = peewee.CharField(max_length=16)  # cron | interval | once
    cron = peewee.CharField(max_length=128, null=True)
    interval_s = peewee.IntegerField(null=True)
    run_at = peewee.DoubleField(null=True)  # for "once"
    timezone = peewee.CharField(max_length=64, default="UTC")
    status = peewee.CharField(max_length=16, default="active")
    max_runs = peewee.IntegerField(default=0)
    run_count = peewee.IntegerField(default=0)
    next_run_at = peewee.DoubleField(null=True, index=True)
    last_run_at = peewee.DoubleField(null=True)
    last_result = peewee.TextField(null=True)
    last_task_uid = peewee.CharField(max_length=64, null=True)
    coalesced_runs = peewee.IntegerField(default=0)
    consecutive_failures = peewee.IntegerField(default=0)
    revision = peewee.IntegerField(default=1)
    running = peewee.BooleanField(default=False)
    claimed_by = peewee.CharField(max_length=128, null=True)
    created_by = peewee.CharField(max_length=128, default="")
    created_at = peewee.DoubleField()
    updated_at = peewee.DoubleField()
    deleted_at = peewee.DoubleField(null=True)


class Goal(BaseModel):
    id = peewee.CharField(max_length=64, primary_key=True)
    title = peewee.CharField(max_length=200)
    goal_kind = peewee.CharField(max_length=16, default="count")  # count | llm
    objective = peewee.TextField(default="")
    template = JsonField(null=True)
    target_count = peewee.IntegerField(default=0)
    per_device = peewee.BooleanField(default=False)
    success_count = peewee.IntegerField(default=0)
    status = peewee.CharField(max_length=24, default="active")
    deadline_at = peewee.DoubleField(null=True)
    next_run_at = peewee.DoubleField(null=True)
    delay_reason = peewee.TextField(null=True)
    iterations = peewee.IntegerField(default=0)
    fast_iterations = peewee.IntegerField(default=0)
    thread_id = peewee.CharField(max_length=128, null=True)
    last_result = peewee.TextField(null=True)
    running = peewee.BooleanField(default=False)
    revision = peewee.IntegerField(default=1)
    created_by = peewee.CharField(max_length=128, default="")
    created_at = peewee.DoubleField()
    updated_at = peewee.DoubleField()
    completed_at = peewee.DoubleField(null=True)


class Agent(BaseModel):
    uuid = peewee.CharField(max_length=64, primary_key=True)
    name = peewee.CharField(max_length=128, default="")
    address = peewee.CharField(max_length=128, default="")
    version = peewee.CharField(max_length=32, default="")
    capabilities = JsonField(default=list)
    connected = peewee.BooleanField(default=False)
    last_heartbeat = peewee.DoubleField(null=True)
    latency_ms = peewee.DoubleField(null=True)
    created_at = peewee.DoubleField()
    notes = peewee.TextField(default="")


class AgentTask(BaseModel):
    """A task sent to a remote agent, in the reference's shape (``task_query``)."""

    id = peewee.BigAutoField()
    uuid = peewee.CharField(max_length=64)
    token = peewee.CharField(max_length=64)
    cron_source = peewee.CharField(max_length=128, null=True, index=True)
    timestamp = peewee.BigIntegerField(null=True)  # ms, set when the result arrives
    created_ms = peewee.BigIntegerField()
    success = peewee.BooleanField(null=True)
    error_message = peewee.TextField(null=True)
    task_type = peewee.CharField(max_length=32)
    task_event_type = JsonField()
    task_event_result = JsonField(null=True)
    task_uid = peewee.CharField(max_length=64, null=True)

    class Meta:
        indexes = ((("uuid", "timestamp"), False),)


class Alert(BaseModel):
    id = peewee.BigAutoField()
    kind = peewee.CharField(max_length=64)
    subject = peewee.CharField(max_length=255, default="")
    severity = peewee.CharField(max_length=16, default="warning")
    message = peewee.TextField()
    created_at = peewee.DoubleField(index=True)
    acknowledged = peewee.BooleanField(default=False)


class AlertCooldown(BaseModel):
    key = peewee.CharField(max_length=255, primary_key=True)
    last_at = peewee.DoubleField()


class AuditLog(BaseModel):
    id = peewee.BigAutoField()
    at = peewee.DoubleField(index=True)
    actor = peewee.CharField(max_length=128)
    action = peewee.CharField(max_length=64)
    subject = peewee.CharField(max_length=255, default="")
    detail = JsonField(default=dict)


ALL_MODELS: tuple[type[BaseModel], ...] = (
    SchemaVersion,
    Setting,
    Device,
    BatterySample,
    Queue,
    Task,
    Execution,
    Lock,
    Schedule,
    Goal,
    Agent,
    AgentTask,
    Alert,
    AlertCooldown,
    AuditLog,
)
