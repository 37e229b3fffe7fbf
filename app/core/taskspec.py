"""What a caller submits to create a task, and its kind-independent validation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app.core.enums import Priority
from app.core.errors import ValidationError
from app.core.payload import check_payload_size
from app.core.records import amended
from app.core.targets import Target

KIND_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
QUEUE_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
SOURCE_RE = re.compile(r"^(gui|cli|api|rpc|system|plugin|schedule:[\w\-]+|goal:[\w\-]+)$")
DEDUPE_RE = re.compile(r"^[\w.:=\-/,@]{1,200}$")

MAX_ATTEMPTS_LIMIT = 100

# Kinds, queues and sources already found well-formed: a lab uses a handful of each,
# and a bulk submit checks the same few thousands of times.
_WELL_FORMED: set[tuple[str, str, str]] = set()
_WELL_FORMED_MAX = 4096
MAX_TIMEOUT_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class TaskSpec:
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    queue: str = "default"
    priority: Priority = Priority.NORMAL
    target: Target = field(default_factory=Target.any)
    not_before: float | None = None
    max_attempts: int = 3
    timeout_s: float = 300.0
    dedupe_key: str | None = None
    source: str = "api"
    created_by: str = ""
    uid: str | None = None
    # Set on the copy ``validated`` returns: the spec is frozen, so a second call (the
    # engine validates, then the store does) need not check it all again.
    _checked: bool = field(default=False, compare=False, repr=False)

    def validated(self) -> TaskSpec:
        """Check every kind-independent rule; return a normalised copy."""
        if self._checked:
            return self
        names = (self.kind, self.queue, self.source)
        if not all(type(name) is str for name in names) or names not in _WELL_FORMED:
            self._check_names()
            if len(_WELL_FORMED) < _WELL_FORMED_MAX:
                _WELL_FORMED.add(names)
        priority = Priority.parse(self.priority)
        if not isinstance(self.payload, dict):
            raise ValidationError("payload must be a JSON object", field="payload")
        check_payload_size(self.payload)
        if (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or not 1 <= self.max_attempts <= MAX_ATTEMPTS_LIMIT
        ):
            raise ValidationError(
                f"max_attempts must be an integer from 1 to {MAX_ATTEMPTS_LIMIT}",
                field="max_attempts",
            )
        try:
            timeout = float(self.timeout_s)
        except (TypeError, ValueError):
            raise ValidationError("timeout_s must be a number", field="timeout_s") from None
        if not 0.1 <= timeout <= MAX_TIMEOUT_S:
            raise ValidationError(
                f"timeout_s must be between 0.1 and {MAX_TIMEOUT_S:.0f}", field="timeout_s"
            )
        if self.dedupe_key is not None and not DEDUPE_RE.match(self.dedupe_key):
            raise ValidationError(f"invalid dedupe_key {self.dedupe_key!r}", field="dedupe_key")
        if len(self.created_by) > 128:
            raise ValidationError("created_by is too long", field="created_by")
        if not isinstance(self.target, Target):
            raise ValidationError("target must be a Target", field="target")
        return amended(self, priority=priority, timeout_s=timeout, _checked=True)

    def _check_names(self) -> None:
        if not isinstance(self.kind, str) or not KIND_RE.match(self.kind):
            raise ValidationError(
                f"invalid task kind {self.kind!r}: use dotted lower-case names like adb.shell",
                field="kind",
            )
        if not isinstance(self.queue, str) or not QUEUE_RE.match(self.queue):
            raise ValidationError(f"invalid queue name {self.queue!r}", field="queue")
        if not isinstance(self.source, str) or not SOURCE_RE.match(self.source):
            raise ValidationError(f"invalid source {self.source!r}", field="source")

    @classmethod
    def from_json(cls, data: Any, *, source: str = "api", created_by: str = "") -> TaskSpec:
        """Build from the JSON shape used by the API, the CLI and bulk files."""
        from app.core.clock import parse_time

        if not isinstance(data, dict):
            raise ValidationError("a task must be a JSON object")
        allowed = {
            "kind", "payload", "queue", "priority", "target", "not_before", "max_attempts",
            "timeout_s", "dedupe_key", "created_by", "id",
        }
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValidationError(f"unknown task field(s): {', '.join(unknown)}", field=unknown[0])
        if "kind" not in data:
            raise ValidationError("task field 'kind' is required", field="kind")
        not_before = data.get("not_before")
        if isinstance(not_before, str):
            not_before = parse_time(not_before)
        elif not_before is not None and not isinstance(not_before, int | float):
            raise ValidationError("not_before must be a time", field="not_before")
        target = data.get("target")
        if target is not None and not isinstance(target, str):
            raise ValidationError("target must be text such as device:SERIAL", field="target")
        spec = cls(
            kind=data["kind"],
            payload=data.get("payload") or {},
            queue=data.get("queue") or "default",
            priority=Priority.parse(data.get("priority", "normal")),
            target=Target.parse(target),
            not_before=float(not_before) if not_before is not None else None,
            max_attempts=data.get("max_attempts", 3),
            timeout_s=data.get("timeout_s", 300.0),
            dedupe_key=data.get("dedupe_key"),
            source=source,
            created_by=str(data.get("created_by") or created_by),
            uid=data.get("id"),
        )
        return spec.validated()
