"""``demo.capture``: a light multi-step job that shows what a real capture job looks like.

It launches an app, taps through ``steps`` items (pausing ``step_ms`` on the
phone between taps), reports progress after each item and optionally saves a
screenshot. The demo lab and the 1,000-task load test run it, so each step is
one or two short shell commands and nothing more.
"""

from __future__ import annotations

from typing import Any

from app.core.payload import Field, Schema
from app.engine.kinds.adb_kinds import (
    CommandExitError,
    PackageKind,
    require_device,
    start_app,
    take_screenshot,
)
from app.engine.kinds.base import RunContext

# Taps land inside the smallest screen the lab has (360x640), spread over it.
TAP_AREA = (40, 80, 280, 480)  # left, top, width, height


def tap_point(item: int) -> tuple[int, int]:
    """A deterministic, varied tap position for item ``item`` (1-based)."""
    left, top, width, height = TAP_AREA
    return left + (item * 67) % width, top + (item * 131) % height


class DemoCaptureKind(PackageKind):
    name = "demo.capture"
    title = "Demo capture"
    description = (
        "Launch an app, tap through N items with progress, optionally take a screenshot. "
        "Used by the demo lab."
    )
    schema = Schema((
        Field("steps", "int", default=5, min=1, max=50, help="Items to capture."),
        Field("step_ms", "int", default=150, min=0, max=10_000,
              help="Pause on the phone after each tap, in milliseconds."),
        Field("package", "str", default="com.example.capture", max_length=255,
              help="App to launch."),
        Field("screenshot", "bool", default=False, help="Save a screenshot at the end."),
    ))

    async def run(self, ctx: RunContext, payload: dict[str, Any]) -> dict[str, Any]:
        device = require_device(ctx, self.name)
        steps: int = payload["steps"]
        pause = payload["step_ms"] / 1000.0
        await ctx.progress(percent=0, message=f"Launching {payload['package']}", step="launch")
        await start_app(device, payload["package"], None)
        for item in range(1, steps + 1):
            x, y = tap_point(item)
            result = await device.shell(["input", "tap", str(x), str(y)])
            if result.exit_code != 0:
                raise CommandExitError(f"input tap (item {item}/{steps})", result)
            if pause:
                await device.shell(["sleep", f"{pause:g}"])
            await ctx.progress(percent=item * 95 // steps,
                               message=f"Capturing item {item}/{steps}", step="capture")
        out: dict[str, Any] = {"items_collected": steps, "serial": device.serial}
        if payload["screenshot"]:
            await ctx.progress(message="Taking a screenshot", step="screenshot")
            shot = await take_screenshot(ctx, device)
            out["screenshot"] = shot["path"]
        await ctx.progress(percent=100, message=f"Collected {steps} items", step="finalize")
        return out
