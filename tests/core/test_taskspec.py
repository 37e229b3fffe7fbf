"""TaskSpec.validated: normalises once; a validated spec is not checked again."""

from __future__ import annotations

import pytest

from app.core.enums import Priority
from app.core.errors import ValidationError
from app.core.taskspec import TaskSpec


def test_validated_normalises_and_a_second_call_returns_the_same_spec() -> None:
    raw = TaskSpec(kind="adb.shell", priority="high", timeout_s=30)  # type: ignore[arg-type]
    checked = raw.validated()
    assert checked.priority is Priority.HIGH and checked.timeout_s == 30.0
    assert isinstance(checked.timeout_s, float)
    assert checked.validated() is checked
    assert checked == TaskSpec(kind="adb.shell", priority=Priority.HIGH, timeout_s=30.0)
    assert "_checked" not in repr(checked)


def test_an_unchecked_spec_is_always_checked() -> None:
    with pytest.raises(ValidationError, match="max_attempts"):
        TaskSpec(kind="adb.shell", max_attempts=0).validated()
    with pytest.raises(ValidationError, match="limit"):
        TaskSpec(kind="adb.shell", payload={"blob": "x" * (1 << 20)}).validated()
