"""Built-in system jobs: retention cleanup, timeout sweep, lease reaper.

Each job is single-flight (an asyncio lock here, and a store lock
``system:<name>`` so several workstations sharing a database never run the same
job at once) and records itself as an execution (module ``system``). The lease
reaper runs every few seconds and records itself only when it reaped something,
so the history is not flooded with empty runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from app.core.enums import ExecStatus, HolderKind
from app.core.schedule import next_cron
from app.engine.config import EngineConfig
from app.engine.storethread import StoreThread

log = logging.getLogger(__name__)

SYSTEM_MODULE = "system"


class Maintenance:
    def __init__(self, *, config: EngineConfig, store: StoreThread, owner: str,
                 on_reaped: Callable[[int], None]) -> None:
        self._config = config
        self._store = store
        self._owner = owner
        self._on_reaped = on_reaped
        self._locks: dict[str, asyncio.Lock] = {}

    # -- jobs -------------------------------------------------------------------------
    async def retention_cleanup(self) -> dict[str, Any]:
        from app.store import executions

        days = self._config.retention_days
        return await self._run("system.retention_cleanup", lambda: {
            "deleted": executions.purge_old_executions(retention_days=days),
            "retention_days": days,
        }, ttl_s=86400)

    async def timeout_sweep(self) -> dict[str, Any]:
        from app.store import executions

        minutes = self._config.timeout_minutes
        return await self._run("system.timeout_sweep", lambda: {
            "marked_failed": executions.sweep_timeouts(default_timeout_s=minutes * 60.0),
            "timeout_minutes": minutes,
        }, ttl_s=3600)

    async def reap_leases(self) -> int:
        from app.store import tasks

        reaped = await self._store.call(tasks.reap_expired)
        if reaped:
            log.warning("reaped %d task(s) whose worker lost its lease", len(reaped))
            await self._record("system.lease_reaper", ExecStatus.SUCCESS,
                               {"reaped": [t.uid for t in reaped]})
            self._on_reaped(len(reaped))
        return len(reaped)

    # -- scheduling ---------------------------------------------------------------------
    async def run_cron(self, name: str, cron: str, job: Callable[[], Any]) -> None:
        """Run ``job`` at every fire time of ``cron`` (UTC) until cancelled."""
        while True:
            now = time.time()
            delay = next_cron(cron, now) - now
            await asyncio.sleep(max(1.0, delay))
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("system job %s failed", name)

    # -- helpers --------------------------------------------------------------------------
    async def _run(self, name: str, work: Callable[[], dict[str, Any]],
                   *, ttl_s: float) -> dict[str, Any]:
        from app.store import executions, locks

        lock = self._locks.setdefault(name, asyncio.Lock())
        if lock.locked():
            return {"status": "skipped", "reason": "task_already_running"}
        async with lock:
            lock_name = f"system:{name}"
            token = f"{self._owner}:{uuid.uuid4().hex[:6]}"
            held = await self._store.call(locks.acquire, lock_name, token,
                                          holder_kind=HolderKind.SYSTEM, ttl_s=ttl_s,
                                          note="system job")
            if held is None:
                return {"status": "skipped", "reason": "task_already_running"}
            record = await self._store.call(
                executions.create_execution, task_id=f"{name}:{uuid.uuid4().hex[:12]}",
                task_name=name, module=SYSTEM_MODULE, status=ExecStatus.STARTED,
                created_by="system",
            )
            try:
                result = await self._store.call(work)
            except Exception as exc:
                await self._store.call(
                    executions.update_execution, record.id, status=ExecStatus.FAILURE,
                    error=str(exc), traceback="".join(traceback.format_exception(exc)),
                )
                raise
            finally:
                await self._store.call(locks.release, lock_name, token)
            await self._store.call(executions.update_execution, record.id,
                                   status=ExecStatus.SUCCESS, result=result)
            return result

    async def _record(self, name: str, status: ExecStatus, result: dict[str, Any]) -> None:
        from app.store import executions

        record = await self._store.call(
            executions.create_execution, task_id=f"{name}:{uuid.uuid4().hex[:12]}",
            task_name=name, module=SYSTEM_MODULE, status=ExecStatus.STARTED,
            created_by="system",
        )
        await self._store.call(executions.update_execution, record.id, status=status,
                               result=result)
