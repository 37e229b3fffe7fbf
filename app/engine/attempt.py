"""One attempt of a task kind: its coroutine run inline in the job's task, how it
ended (``Outcome``) and what that means for the record (``failure``)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from app.core.errors import TaskDeskError
from app.core.jsontext import encode_strict_json, is_flat_json_object
from app.core.records import TaskRecord
from app.devices.base import CommandTimeoutError, DeviceGoneError
from app.engine.devicepool import DeviceSlot
from app.engine.kinds.base import PermanentError
from app.engine.runcontext import EngineRunContext

log = logging.getLogger(__name__)


@dataclass
class RunningAttempt:
    """A kind's coroutine running inside its job's task (``runner``): an interrupt
    cancels that task while, and only while, the kind runs."""

    task: TaskRecord
    execution_id: int
    runner: asyncio.Task[Any]
    ctx: EngineRunContext
    slot: DeviceSlot | None
    reason: str | None = None
    started: float = field(default_factory=time.monotonic)
    live: bool = True  # the kind has not returned yet

    def interrupt(self, reason: str) -> None:
        if self.reason is not None or not self.live:
            return
        self.reason = reason
        self.ctx.cancel()
        self.runner.cancel()


@dataclass
class Outcome:
    """How the kind's coroutine ended: a result, an exception, or cancelled."""

    result: Any = None
    error: BaseException | None = None
    cancelled: bool = False


async def run_kind(kind: Any, attempt: RunningAttempt, timeout_s: float) -> Outcome:
    """Run the kind's coroutine in this (the job's) task until it ends; past
    ``timeout_s`` it is interrupted with reason ``timeout``. The kind runs inline rather
    than in a task of its own: a task and the wait for it cost more than all the rest of
    a short attempt's bookkeeping."""
    loop = asyncio.get_running_loop()
    timer = loop.call_later(timeout_s, attempt.interrupt, "timeout")
    outcome = Outcome()
    try:
        outcome.result = await kind.run(attempt.ctx, dict(attempt.task.payload))
    except asyncio.CancelledError as exc:
        if attempt.reason is None:
            raise  # the job itself is being cancelled, not the attempt
        outcome.cancelled, outcome.error = True, exc
    except Exception as exc:
        outcome.error = exc
    finally:
        attempt.live = False
        timer.cancel()
    if attempt.reason is not None:
        attempt.runner.uncancel()  # the interrupt is handled; the job goes on
        if not outcome.cancelled:
            log.warning("task %s (%s) ended on its own after it was interrupted (%s)",
                        attempt.task.uid, attempt.task.kind, attempt.reason)
    return outcome


def failure(attempt: RunningAttempt, outcome: Outcome) -> tuple[str, dict[str, Any]]:
    task = attempt.task
    if attempt.reason == "timeout":
        return f"timed out after {task.timeout_s:g} s", {"reason": "timeout"}
    if attempt.reason == "device_lost":
        return ("device lost: it disconnected and did not come back in time",
                {"reason": "device_lost", "retry_delay": 0.0})
    if outcome.cancelled:
        return "the attempt was cancelled", {"reason": attempt.reason or "cancelled"}
    exc = outcome.error
    assert exc is not None
    tb = "".join(traceback.format_exception(exc))
    if isinstance(exc, DeviceGoneError):
        return (f"device lost: {exc}",
                {"reason": "device_lost", "retry_delay": 0.0, "traceback": tb})
    if isinstance(exc, CommandTimeoutError):
        return f"device command timed out: {exc}", {"reason": "timeout", "traceback": tb}
    message = str(exc) or type(exc).__name__
    if isinstance(exc, PermanentError | TaskDeskError):
        return message, {"reason": "error", "retryable": False, "traceback": tb}
    return f"{type(exc).__name__}: {message}", {"reason": "error", "traceback": tb}


def jsonable(value: Any) -> Any:
    """``value`` if the store can keep it as JSON, else its JSON form with anything
    else as text (non-finite numbers too: the store refuses them, and a refused
    outcome would leave the attempt unrecorded)."""
    if value is None or type(value) in (str, bool, int) or is_flat_json_object(value):
        return value
    try:
        encode_strict_json(value)  # strict as the store is: no NaN or infinity
        return value
    except (TypeError, ValueError):
        return _finite(json.loads(json.dumps(value, default=str)))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_finite(item) for item in value]
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value


__all__ = ["Outcome", "RunningAttempt", "failure", "jsonable", "run_kind"]
