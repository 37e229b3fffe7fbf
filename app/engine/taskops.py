"""The task state changes the job runner makes most often, batched.

``start``, ``complete`` and ``fail`` requests made in the same loop turn reach the
store as one call (see ``batcher.py``); rarer changes go straight through.
"""

from __future__ import annotations

from typing import Any

from app.core.records import ExecutionRecord, TaskRecord
from app.engine.batcher import Batcher, each
from app.engine.storethread import StoreThread


class TaskOps:
    def __init__(self, store: StoreThread, owner: str) -> None:
        from app.store import tasks

        self._store = store
        self.owner = owner
        self._starts: Batcher[Any, tuple[TaskRecord, ExecutionRecord]] = Batcher(
            store, each(tasks.start))
        self._completes: Batcher[Any, TaskRecord] = Batcher(store, each(tasks.complete))
        self._fails: Batcher[Any, TaskRecord] = Batcher(store, each(tasks.fail))

    async def start(self, uid: str) -> tuple[TaskRecord, ExecutionRecord]:
        return await self._starts.submit(((uid, self.owner), {}))

    async def complete(self, uid: str, execution_id: int, result: Any,
                       metadata: dict[str, Any] | None = None) -> TaskRecord:
        return await self._completes.submit(
            ((uid, self.owner, execution_id, result), {"metadata": metadata}))

    async def fail(self, uid: str, execution_id: int, **kwargs: Any) -> TaskRecord:
        return await self._fails.submit(((uid, self.owner, execution_id), kwargs))

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
