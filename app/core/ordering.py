"""The dispatch order: which pending task a device takes next.

Order, most important first:
1. priority (critical > high > normal > low);
2. tasks targeted at this very device before tasks any device could take;
3. retries (a task that already had an attempt) before fresh work;
4. age: the oldest ``created_at`` first, then the lowest id.

``dispatch_key`` is the single definition; the store's claim query produces the
same order (a test checks that both agree).
"""

from __future__ import annotations

from typing import Protocol

from app.core.enums import TargetKind
from app.core.targets import Target


class Orderable(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def priority(self) -> int: ...
    @property
    def target(self) -> Target: ...
    @property
    def attempts(self) -> int: ...
    @property
    def created_at(self) -> float: ...


def dispatch_key(task: Orderable, serial: str | None) -> tuple[int, int, int, float, int]:
    """Sort key: smaller sorts first."""
    targeted = (
        serial is not None
        and task.target.kind is TargetKind.DEVICE
        and task.target.serial == serial
    )
    return (
        -int(task.priority),
        0 if targeted else 1,
        0 if task.attempts > 0 else 1,
        task.created_at,
        task.id,
    )
