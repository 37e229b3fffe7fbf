"""The one thread that talks to the database.

SQLite has one writer, and peewee calls block: every store call from async code
goes through ``StoreThread.call``. Calls that queue up while a transaction runs
are committed together (group commit): under load, a hundred small writes cost
one commit instead of a hundred, each still isolated in its own savepoint so one
failing call never undoes another.

Results of a group are handed out after its commit. Reads submitted with
``submit_read`` that reach the thread ahead of any write of their group run on
their own and are answered at once: they can only see committed data, so they
need not wait for a commit (a page of history must not wait behind a slow count).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import peewee

from app.core.errors import StorageError

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

_STOP = object()
MAX_GROUP = 256


class StoreThread:
    def __init__(self, location: str | Path, backups_dir: Path | None = None) -> None:
        self._location = location
        self._backups_dir = backups_dir
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = concurrent.futures.Future[peewee.Database]()
        self.db: peewee.Database | None = None
        self.calls = 0
        self.commits = 0

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> peewee.Database:
        """Open (and migrate) the database on the store thread; wait until ready."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="store", daemon=True)
            self._thread.start()
        return self._ready.result()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout=30)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- calls ------------------------------------------------------------------------
    def submit(
        self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> concurrent.futures.Future[T]:
        """Queue ``fn`` for the store thread; usable from any thread."""
        return self._enqueue(fn, args, kwargs, read_only=False)

    def submit_read(
        self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> concurrent.futures.Future[T]:
        """``submit`` for a function that only reads: answered as soon as it has run
        when nothing queued before it writes (see the module docstring)."""
        return self._enqueue(fn, args, kwargs, read_only=True)

    def _enqueue(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any],
                 *, read_only: bool) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        if self._thread is None:
            future.set_exception(StorageError("the store is not running"))
            return future
        self._queue.put((fn, args, kwargs, future, read_only))
        return future

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on the store thread and await its result."""
        return await asyncio.wrap_future(self.submit(fn, *args, **kwargs))

    def call_sync(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Blocking variant for code that is not on the event loop."""
        return self.submit(fn, *args, **kwargs).result()

    # -- thread -----------------------------------------------------------------------
    def _run(self) -> None:
        from app.store.schema import open_store

        try:
            self.db = open_store(self._location, self._backups_dir)
        except BaseException as exc:
            self._ready.set_exception(exc)
            return
        self._ready.set_result(self.db)
        db = self.db
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    break
                batch = [item]
                stop_after = False
                while len(batch) < MAX_GROUP:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is _STOP:
                        stop_after = True
                        break
                    batch.append(more)
                self._run_batch(db, batch)
                if stop_after:
                    break
        finally:
            try:
                db.close()
            except Exception:
                log.exception("closing the store failed")

    def _run_batch(self, db: peewee.Database, batch: list[Any]) -> None:
        live = [item for item in batch if item[3].set_running_or_notify_cancel()]
        reads = 0
        while reads < len(live) and live[reads][4]:
            self._run_one(live[reads], db=None)  # committed data only: answer it now
            reads += 1
        live = live[reads:]
        if not live:
            return
        if len(live) == 1:
            self._run_one(live[0], db=None)
            return
        results: list[tuple[concurrent.futures.Future[Any], bool, Any]] = []
        try:
            with db.atomic():
                for item in live:
                    results.append(self._call_in_savepoint(db, item))
        except Exception as exc:  # the commit itself failed: every call failed
            err = _classify(exc)
            for item in live:
                if not item[3].done():
                    item[3].set_exception(err)
            return
        self.commits += 1
        for future, ok, value in results:
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _call_in_savepoint(
        self, db: peewee.Database, item: Any
    ) -> tuple[concurrent.futures.Future[Any], bool, Any]:
        fn, args, kwargs, future, _ = item
        self.calls += 1
        try:
            with db.atomic():
                return future, True, fn(*args, **kwargs)
        except Exception as exc:
            return future, False, _classify(exc)

    def _run_one(self, item: Any, db: peewee.Database | None) -> None:
        fn, args, kwargs, future, read_only = item
        self.calls += 1
        try:
            value = fn(*args, **kwargs)
        except Exception as exc:
            future.set_exception(_classify(exc))
        else:
            if not read_only:
                self.commits += 1
            future.set_result(value)


def _classify(exc: Exception) -> Exception:
    """Environment faults of the database become a StorageError with a clear message;
    anything else (a bug, a domain error) passes through unchanged."""
    if isinstance(exc, peewee.OperationalError):
        text = str(exc).lower()
        for needle, message in (
            ("locked", "the database is locked by another program"),
            ("busy", "the database is busy"),
            ("disk is full", "the disk holding the database is full"),
            ("readonly", "the database is read-only"),
            ("read-only", "the database is read-only"),
            ("malformed", "the database file is corrupt"),
            ("not a database", "the file is not a TaskDesk database"),
            ("unable to open", "the database file cannot be opened"),
            ("connection", "the database connection failed"),
        ):
            if needle in text:
                err = StorageError(f"{message} ({exc})")
                err.__cause__ = exc
                return err
    return exc
