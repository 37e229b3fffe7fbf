"""Async device operations for running tasks, over a blocking ``DeviceProvider``.

Each operation runs in the device thread pool. When the task is cancelled (by an
operator, a timeout, a lost device or shutdown) the shared cancel event is set,
which makes the provider close the device stream; we wait for the blocking call
to notice before letting the cancellation continue, so "cancelled" really means
the device command stopped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from app.devices.base import DeviceProvider, ShellResult

T = TypeVar("T")

CANCEL_WAIT_S = 3.0


async def run_interruptible(
    pool: concurrent.futures.Executor,
    cancel_event: threading.Event,
    fn: Callable[..., T],
    /,
    *args: Any,
    **kwargs: Any,
) -> T:
    """Run a blocking call; on cancellation set ``cancel_event`` and wait for the call to
    end (the provider polls the event and closes the device stream)."""
    future = pool.submit(functools.partial(fn, *args, **kwargs))
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        cancel_event.set()
        if not future.done():
            waiter = asyncio.wrap_future(future)
            await asyncio.wait([waiter], timeout=CANCEL_WAIT_S)
            if waiter.done() and not waiter.cancelled():
                waiter.exception()  # retrieved: the cancellation is what matters now
        raise


class EngineDeviceHandle:
    """The ``DeviceHandle`` given to task kinds."""

    def __init__(
        self,
        provider: DeviceProvider,
        serial: str,
        pool: concurrent.futures.Executor,
        cancel: threading.Event,
        remaining_time: Callable[[], float],
    ) -> None:
        self.serial = serial
        self._provider = provider
        self._pool = pool
        self._cancel = cancel
        self._remaining = remaining_time

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await run_interruptible(self._pool, self._cancel, fn, *args, **kwargs)

    async def shell(
        self,
        command: str | Sequence[str],
        *,
        timeout: float | None = None,
        output_limit: int = 64 * 1024,
    ) -> ShellResult:
        budget = self._remaining()
        limit = budget if timeout is None else min(timeout, budget)
        return await self._call(
            self._provider.shell,
            self.serial,
            command,
            timeout=max(0.1, limit),
            cancel=self._cancel,
            output_limit=output_limit,
        )

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
