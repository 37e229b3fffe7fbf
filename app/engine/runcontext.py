"""The ``RunContext`` a task kind receives for one attempt."""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from app.core.records import TaskRecord
from app.engine.bus import EventBus, ExecutionProgress
from app.engine.devicehandle import EngineDeviceHandle, run_interruptible
from app.engine.storethread import StoreThread

T = TypeVar("T")

# Observers get every progress report at once through the bus; the stored copy serves
# other processes and the history, for which a second is fresh enough. (At 0.25 s,
# with 100 phones busy, these writes were most of the store thread's work.)
PROGRESS_WRITE_INTERVAL_S = 1.0


class EngineRunContext:
    def __init__(
        self,
        *,
        task: TaskRecord,
        execution_id: int,
        attempt: int,
        artifacts_root: Path,
        store: StoreThread,
        bus: EventBus,
        pool: concurrent.futures.Executor,
        device: EngineDeviceHandle | None,
        deadline: float,
    ) -> None:
        self.task = task
        self.execution_id = execution_id
        self.attempt = attempt
        self.device = device
        self._artifacts_root = artifacts_root
        # Made on first use: most attempts never block in a thread, and an Event (a
        # Condition and a lock) cost more than the rest of a short attempt's context.
        self._cancel_event: threading.Event | None = None
        self._cancelled = False
        self._store = store
        self._bus = bus
        self._pool = pool
        self._deadline = deadline
        self._artifacts: list[dict[str, Any]] = []
        self._progress: dict[str, Any] = {}
        # The first write waits one interval too: a short attempt's progress reaches
        # the store only with its outcome, which saves two writes per task.
        self._last_write = time.monotonic()
        self._unwritten = False

    # -- the RunContext interface -------------------------------------------------------
    @functools.cached_property
    def artifacts_dir(self) -> Path:
        return self._artifacts_root / self.task.uid

    @functools.cached_property
    def log(self) -> logging.Logger:
        return logging.getLogger(f"taskdesk.task.{self.task.kind}")

    @property
    def cancel_event(self) -> threading.Event:
        if self._cancel_event is None:
            self._cancel_event = threading.Event()
            if self._cancelled:
                self._cancel_event.set()
        return self._cancel_event

    async def progress(
        self,
        percent: int | None = None,
        message: str | None = None,
        step: str | None = None,
        **extra: Any,
    ) -> None:
        if percent is not None:
            self._progress["progress_percent"] = max(0, min(100, int(percent)))
        if message is not None:
            self._progress["progress_message"] = str(message)[:256]
        if step is not None:
            self._progress["progress_step"] = str(step)[:64]
        self._progress.update(extra)
        self._bus.publish(
            ExecutionProgress(
                task_uid=self.task.uid,
                execution_id=self.execution_id,
                serial=self.device.serial if self.device else None,
                percent=self._progress.get("progress_percent"),
                message=self._progress.get("progress_message"),
                step=self._progress.get("progress_step"),
            )
        )
        # Progress can be reported far more often than it is worth writing.
        now = time.monotonic()
        if now - self._last_write >= PROGRESS_WRITE_INTERVAL_S:
            self._last_write = now
            self._unwritten = False
            await self._write_progress()
        else:
            self._unwritten = True

    def add_artifact(self, path: Path, label: str = "") -> None:
        self._artifacts.append({"path": str(path), "label": label or path.name})

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        return await run_interruptible(self._pool, self.cancel_event, fn, *args)

    def remaining_time(self) -> float:
        return max(0.0, self._deadline - time.monotonic())

    # -- for the job runner ---------------------------------------------------------------
    def cancel(self) -> None:
        """Tell blocking code of this attempt to stop (sets ``cancel_event``)."""
        self._cancelled = True
        if self._cancel_event is not None:
            self._cancel_event.set()

    def final_metadata(self) -> dict[str, Any]:
        """Metadata to merge into the execution when the attempt ends."""
        out = dict(self._progress)
        if self._artifacts:
            out["artifacts"] = list(self._artifacts)
        return out

    async def _write_progress(self) -> None:
        from app.store import executions, tasks

        meta = dict(self._progress)
        percent = meta.get("progress_percent")
        message = meta.get("progress_message")

        def write() -> None:
            executions.merge_metadata(self.execution_id, meta)
            tasks.set_progress(self.task.uid, percent, message)

        try:
            await self._store.call(write)
        except Exception:
            self.log.exception("could not record progress of %s", self.task.uid)
