"""The task-kind interface: built-in kinds and plugins implement ``TaskKind``.

A plugin is a ``TaskKind`` subclass exposed through the entry-point group
``taskdesk.task_kinds``::

    [project.entry-points."taskdesk.task_kinds"]
    mylab_capture = "mylab.kinds:CaptureKind"

The engine validates payloads with ``validate`` before anything is stored, then
calls ``run`` once per attempt with a ``RunContext``. ``run`` reports progress
through the context and returns a JSON-able result; raising marks the attempt
failed (``PermanentError`` means "do not retry").
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from app.core.enums import TargetKind
from app.core.payload import Schema
from app.core.records import TaskRecord
from app.devices.base import ShellResult

T = TypeVar("T")

DEVICE_TARGETS = frozenset({TargetKind.ANY, TargetKind.DEVICE, TargetKind.SELECTOR})
HOST_TARGETS = frozenset({TargetKind.HOST})


class PermanentError(Exception):
    """A failure that another attempt cannot fix (bad file, refused input)."""


class DeviceHandle(Protocol):
    """Async device operations for a running task; each runs off the event loop
    and is interrupted when the task is cancelled or times out."""

    serial: str

    async def shell(self, command: str | Sequence[str], *, timeout: float | None = None,
                    output_limit: int = 64 * 1024) -> ShellResult: ...
    async def push(self, local: Path, remote: str) -> int: ...
    async def pull(self, remote: str, local: Path) -> int: ...
    async def install(self, apk: Path) -> str: ...
    async def uninstall(self, package: str) -> str: ...
    async def screenshot(self) -> bytes: ...
    async def reboot(self) -> None: ...


class RunContext(Protocol):
    task: TaskRecord
    attempt: int
    execution_id: int
    device: DeviceHandle | None

    @property
    def artifacts_dir(self) -> Path:
        """Where this attempt's files go (created by whoever writes there)."""

    @property
    def log(self) -> logging.Logger:
        """The logger of this task kind."""

    @property
    def cancel_event(self) -> threading.Event:
        """Set when the attempt is interrupted; blocking code in threads polls it."""

    async def progress(self, percent: int | None = None, message: str | None = None,
                       step: str | None = None, **extra: Any) -> None:
        """Merge progress into the execution's metadata and tell observers."""

    def add_artifact(self, path: Path, label: str = "") -> None:
        """Reference a file (under ``artifacts_dir``) from the execution record."""

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking function in the worker pool."""

    def remaining_time(self) -> float:
        """Seconds left before the task's timeout."""


class TaskKind(ABC):
    """Base class for task kinds."""

    name: ClassVar[str]
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    schema: ClassVar[Schema] = Schema()
    targets: ClassVar[frozenset[TargetKind]] = DEVICE_TARGETS

    def validate(self, payload: Any) -> dict[str, Any]:
        """Return the normalised payload or raise ``ValidationError``."""
        return self.schema.validate(payload)

    @abstractmethod
    def run(self, ctx: RunContext, payload: dict[str, Any]) -> Awaitable[Any]:
        """Perform one attempt; return a JSON-able result."""

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title or self.name,
            "description": self.description,
            "targets": sorted(t.value for t in self.targets),
            "fields": self.schema.describe(),
        }
