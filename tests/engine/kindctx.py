"""A small concrete ``RunContext`` for running task kinds in tests.

It implements our own interface (app.engine.kinds.base.RunContext) the simple
way: artifacts in a temporary directory, progress and artifacts recorded in
lists, blocking calls in the default executor, a monotonic deadline.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from app.core.enums import Priority, TaskState
from app.core.records import TaskRecord
from app.core.targets import Target
from app.engine.kinds.base import DeviceHandle

T = TypeVar("T")


def make_task(kind: str, payload: dict[str, Any] | None = None, *,
              target: Target | None = None, timeout_s: float = 300.0) -> TaskRecord:
    stamp = time.time()
    return TaskRecord(
        id=1, uid="task-test-0001", kind=kind, payload=payload or {}, queue="default",
        priority=Priority.NORMAL, target=target or Target.any(), state=TaskState.RUNNING,
        attempts=0, max_attempts=1, timeout_s=timeout_s, created_at=stamp, updated_at=stamp,
    )


class KindTestContext:
    """``RunContext`` for tests: ``progress_calls`` and ``artifacts`` record what a kind did."""

    def __init__(self, artifacts_dir: Path, *, kind: str = "test.kind",
                 device: DeviceHandle | None = None, timeout_s: float = 300.0) -> None:
        self.task = make_task(kind, timeout_s=timeout_s)
        self.attempt = 1
        self.execution_id = 1
        self.device = device
        self.artifacts_dir = artifacts_dir
        self.log = logging.getLogger(f"tests.kind.{kind}")
        self.cancel_event = threading.Event()
        self.progress_calls: list[dict[str, Any]] = []
        self.artifacts: list[tuple[Path, str]] = []
        self._deadline = time.monotonic() + timeout_s

    async def progress(self, percent: int | None = None, message: str | None = None,
                       step: str | None = None, **extra: Any) -> None:
        self.progress_calls.append({"percent": percent, "message": message, "step": step,
                                    **extra})

    def add_artifact(self, path: Path, label: str = "") -> None:
        self.artifacts.append((path, label))

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    def remaining_time(self) -> float:
        return max(0.0, self._deadline - time.monotonic())
