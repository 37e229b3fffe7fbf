"""``--self-test``: prove an installation works, end to end, then exit.

Used by the frozen-binary smoke test: it checks that resources are found, that
task kinds (built-in and from entry points) are registered, and that a few demo
tasks run to success on the simulated phones.
"""

from __future__ import annotations

import time
from typing import Any

from app.core.enums import TaskState
from app.core.taskspec import TaskSpec
from app.engine.engine import Engine

TASKS = 12
TIMEOUT_S = 90.0


async def run_self_test(engine: Engine) -> dict[str, Any]:
    from app.resources import resource

    started = time.monotonic()
    summary: dict[str, Any] = {"ok": False}
    try:
        summary["icon"] = str(resource("icons", "taskdesk.svg"))
    except FileNotFoundError as exc:
        summary["error"] = str(exc)
        return summary
    kinds = engine.registry.describe_all()
    summary["kinds"] = sorted(k["name"] for k in kinds)
    summary["plugin_kinds"] = sorted(k["name"] for k in kinds
                                     if str(k.get("source", "")).startswith("plugin"))
    summary["plugin_errors"] = list(getattr(engine.registry, "plugin_errors", []))
    if not await engine.wait_until(
            lambda: any(v.dispatch == "idle" for v in engine.device_views()), timeout=30):
        summary["error"] = "no phone became available (is the adb server running?)"
        return summary
    records = await engine.submit_many([
        TaskSpec(kind="demo.capture", payload={"steps": 2, "step_ms": 50}, source="system",
                 created_by="self-test")] * TASKS)

    async def finished() -> bool:
        states = [(await engine.get_task(r.uid)).state for r in records]
        return all(s.is_terminal for s in states)

    await engine.wait_until(finished, timeout=TIMEOUT_S, interval=0.2)
    final = [await engine.get_task(r.uid) for r in records]
    succeeded = [t for t in final if t.state is TaskState.SUCCEEDED]
    summary.update({
        "tasks": len(final),
        "succeeded": len(succeeded),
        "phones_used": len({t.device_serial for t in succeeded}),
        "devices": len(engine.device_views()),
        "seconds": round(time.monotonic() - started, 2),
    })
    summary["ok"] = len(succeeded) == len(final) and not summary["plugin_errors"]
    return summary
