"""Coalescing store requests: many concurrent single-item calls become one batch call.

Under load, hundreds of attempts start and finish in the same loop turn. Sending
each to the store thread separately costs a thread hand-off and a savepoint per
call; ``Batcher`` collects the requests made during one loop turn and sends them
as one call to a batch function that returns one result (or exception) per item.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from app.engine.storethread import StoreThread

log = logging.getLogger(__name__)

I = TypeVar("I")  # noqa: E741 - an item
R = TypeVar("R")

MAX_BATCH = 256


class Batcher(Generic[I, R]):
    def __init__(self, store: StoreThread,
                 batch_fn: Callable[[Sequence[I]], Sequence[R | BaseException]],
                 *, max_batch: int = MAX_BATCH) -> None:
        self._store = store
        self._batch_fn = batch_fn
        self._max = max_batch
        self._pending: list[tuple[I, asyncio.Future[R]]] = []
        self._scheduled = False
        self.batches = 0
        self.items = 0

    async def submit(self, item: I) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        while self._pending:
            batch, self._pending = self._pending[: self._max], self._pending[self._max:]
            live = [(item, fut) for item, fut in batch if not fut.cancelled()]
            if live:
                self._send(live)

    def _send(self, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        loop = asyncio.get_running_loop()
        self.batches += 1
        self.items += len(batch)
        items = [item for item, _ in batch]
        done = self._store.submit(self._batch_fn, items)

        def deliver(cf: concurrent.futures.Future[Sequence[R | BaseException]]) -> None:
            loop.call_soon_threadsafe(self._resolve, batch, cf)

        done.add_done_callback(deliver)

    @staticmethod
    def _resolve(batch: list[tuple[I, asyncio.Future[R]]],
                 cf: concurrent.futures.Future[Sequence[R | BaseException]]) -> None:
        error = cf.exception()
        results: Sequence[R | BaseException] = (
            [error] * len(batch) if error is not None else cf.result())
        if len(results) != len(batch):  # a bug in the batch function: fail loudly
            mismatch = RuntimeError(f"batch returned {len(results)} results for "
                                    f"{len(batch)} items")
            results = [mismatch] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

