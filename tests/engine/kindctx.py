"""A small concrete ``RunContext`` (and ``DeviceHandle``) for running task kinds in tests.

It implements our own interface (app.engine.kinds.base.RunContext) the simple
way: artifacts in a temporary directory, progress and artifacts recorded in
lists, blocking calls in the default executor, a monotonic deadline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from app.core.enums import Priority, TaskState
from app.core.records import TaskRecord
from app.core.targets import Target
from app.devices.base import DeviceProvider, ShellResult
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


class ProviderDeviceHandle:
    """A ``DeviceHandle`` over a blocking ``DeviceProvider`` for kind tests.

    Calls run in ``pool``; when the awaiting task is cancelled the shared
    ``cancel`` event is set (the provider then closes the device stream) and the
    call is given a moment to end, as the engine's handle does.
    """

    def __init__(self, provider: DeviceProvider, serial: str,
                 pool: concurrent.futures.Executor, cancel: threading.Event,
                 remaining_time: Callable[[], float]) -> None:
        self.serial = serial
        self._provider = provider
        self._pool = pool
        self._cancel = cancel
        self._remaining = remaining_time

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        future = self._pool.submit(functools.partial(fn, *args, **kwargs))
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            self._cancel.set()
            ending = asyncio.wrap_future(future)
            done, _ = await asyncio.wait([ending], timeout=3.0)
            for finished in done:  # the interrupted call's error is expected: consume it
                finished.exception()
            raise

    async def shell(self, command: str | Sequence[str], *, timeout: float | None = None,
                    output_limit: int = 64 * 1024) -> ShellResult:
        budget = self._remaining() if timeout is None else min(timeout, self._remaining())
        return await self._call(self._provider.shell, self.serial, command,
                                timeout=max(0.1, budget), cancel=self._cancel,
                                output_limit=output_limit)

    async def push(self, local: Path, remote: str) -> int:
        return await self._call(self._provider.push, self.serial, local, remote,
                                cancel=self._cancel)

    async def pull(self, remote: str, local: Path) -> int:
        return await self._call(self._provider.pull, self.serial, remote, local,
                                cancel=self._cancel)

    async def install(self, apk: Path) -> str:
        return await self._call(self._provider.install, self.serial, apk, cancel=self._cancel)

    async def uninstall(self, package: str) -> str:
        return await self._call(self._provider.uninstall, self.serial, package)

    async def screenshot(self) -> bytes:
        return await self._call(self._provider.screenshot, self.serial)

    async def reboot(self) -> None:
        await self._call(self._provider.reboot, self.serial)
