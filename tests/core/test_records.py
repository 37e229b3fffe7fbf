"""The hot path's record builders must give exactly what the dataclass constructors give."""

from __future__ import annotations

import dataclasses

import pytest

from app.core.enums import ExecStatus, Priority, TaskState
from app.core.records import ExecutionRecord, TaskRecord, amended, assemble
from app.core.targets import Target

TASK_FIELDS = {
    "id": 7, "uid": "u1", "kind": "adb.shell", "payload": {"command": "true"},
    "queue": "default", "priority": Priority.HIGH, "target": Target.parse("tags:lab"),
    "state": TaskState.RUNNING, "attempts": 1, "max_attempts": 3, "timeout_s": 30.0,
    "created_at": 1.0, "updated_at": 2.0, "source": "cli", "created_by": "ops",
    "not_before": None, "dedupe_key": "k", "lease_owner": "eng", "lease_expires_at": 9.0,
    "device_serial": "S1", "agent_uuid": None, "last_error": None, "result": None,
    "cancel_requested": False, "finished_at": None, "progress_percent": 40,
    "progress_message": "half",
}


def test_assemble_equals_the_constructor() -> None:
    built = assemble(TaskRecord, dict(TASK_FIELDS))
    assert built == TaskRecord(**TASK_FIELDS)
    assert hash(built.target) == hash(TASK_FIELDS["target"])
    execution = {"id": 3, "task_id": "u1", "task_name": "adb.shell", "module": "default",
                 "status": ExecStatus.SUCCESS, "created_at": 1.0, "attempt": 2,
                 "device_serial": "S1", "agent_uuid": None, "created_by": "",
                 "args": [], "kwargs": {"a": 1}, "result": {"ok": True}, "error": None,
                 "traceback": None, "metadata": {"worker": "w"}, "started_at": 1.0,
                 "finished_at": 2.0, "timeout_s": 30.0}
    assert assemble(ExecutionRecord, dict(execution)) == ExecutionRecord(**execution)


def test_assembled_records_stay_frozen() -> None:
    built = assemble(TaskRecord, dict(TASK_FIELDS))
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.state = TaskState.PENDING  # type: ignore[misc]


def test_amended_equals_replace_and_leaves_the_original_alone() -> None:
    original = TaskRecord(**TASK_FIELDS)
    changed = amended(original, state=TaskState.SUCCEEDED, result={"ok": 1})
    assert changed == dataclasses.replace(original, state=TaskState.SUCCEEDED,
                                          result={"ok": 1})
    assert original.state is TaskState.RUNNING


def test_amended_refuses_a_field_the_record_does_not_have() -> None:
    original = TaskRecord(**TASK_FIELDS)
    with pytest.raises(TypeError, match="no field"):
        amended(original, colour="red")
