"""The task state changes the job runner makes most often, batched.

``start``, ``complete`` and ``fail`` requests made in the same loop turn reach the
store as one call (see ``batcher.py``); rarer changes go straight through.
"""

from __future__ import annotations

import functools
from typing import Any

from app.core.records import ExecutionRecord, TaskRecord
from app.engine.batcher import Batcher
from app.engine.storethread import StoreThread


class TaskOps:
    def __init__(self, store: StoreThread, owner: str) -> None:
        from app.store import hotpath

        self._store = store
        self.owner = owner
        self._starts: Batcher[str, tuple[TaskRecord, ExecutionRecord]] = Batcher(
            store, functools.partial(hotpath.start_many, owner))
        self._completes: Batcher[Any, TaskRecord] = Batcher(
            store, functools.partial(hotpath.complete_many, owner))
        self._fails: Batcher[Any, TaskRecord] = Batcher(
            store, functools.partial(hotpath.fail_many, owner))

    async def start(self, uid: str) -> tuple[TaskRecord, ExecutionRecord]:
        return await self._starts.submit(uid)

    async def complete(self, uid: str, execution_id: int, result: Any,
                       metadata: dict[str, Any] | None = None, *,
                       running: TaskRecord | None = None) -> TaskRecord:
        """``running``: the task as its start returned it (spares the store a read)."""
        if running is None:
            return await self._completes.submit((uid, execution_id, result, metadata))
        return await self._completes.submit((uid, execution_id, result, metadata, running))

    async def fail(self, uid: str, execution_id: int, *, error: str,
                   traceback: str | None = None, reason: str = "error",
                   retryable: bool = True, retry_delay: float | None = None,
                   metadata: dict[str, Any] | None = None) -> TaskRecord:
        from app.store.hotpath import FailItem

        return await self._fails.submit(FailItem(
            uid, execution_id, error, traceback=traceback, reason=reason,
            retryable=retryable, retry_delay=retry_delay, metadata=metadata))

    async def revoke(self, uid: str, execution_id: int, reason: str) -> TaskRecord:
        from app.store import tasks

        return await self._store.call(tasks.revoke, uid, self.owner, execution_id,
                                      reason=reason)

    async def interrupt(self, uid: str, execution_id: int, **kwargs: Any) -> TaskRecord:
        from app.store import tasks

        return await self._store.call(tasks.interrupt, uid, self.owner, execution_id,
                                      **kwargs)

    @property
    def batch_stats(self) -> dict[str, tuple[int, int]]:
        return {name: (b.batches, b.items) for name, b in
                (("start", self._starts), ("complete", self._completes),
                 ("fail", self._fails))}
