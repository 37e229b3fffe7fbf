"""``lab.health_check``: a quick health report of one phone.

Shipped through the ``taskdesk.task_kinds`` entry point (see pyproject.toml) rather
than registered in code, so that the plugin mechanism is exercised by the product
itself — including in the frozen build, whose smoke test checks it is found.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from app.core.payload import Field, Schema
from app.devices.adb_parse import parse_battery
from app.engine.kinds.adb_kinds import require_device
from app.engine.kinds.base import RunContext, TaskKind

_DF_RE = re.compile(r"^\S+\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+%\s+/data$", re.MULTILINE)


class HealthCheckKind(TaskKind):
    name: ClassVar[str] = "lab.health_check"
    title: ClassVar[str] = "Phone health check"
    description: ClassVar[str] = (
        "Battery, temperature, free storage and uptime of a phone; fails when the battery "
        "is below min_battery or the phone is hotter than max_temperature_c.")
    schema: ClassVar[Schema] = Schema((
        Field("min_battery", "int", default=15, min=0, max=100,
              help="fail below this battery level (percent)"),
        Field("max_temperature_c", "float", default=45.0, min=0, max=100,
              help="fail above this battery temperature (°C)"),
    ))

    async def run(self, ctx: RunContext, payload: dict[str, Any]) -> Any:
        device = require_device(ctx, self.name)
        await ctx.progress(10, "Reading battery", "battery")
        battery = parse_battery((await device.shell("dumpsys battery", timeout=15)).output)
        await ctx.progress(50, "Reading storage", "storage")
        df = (await device.shell("df -k /data", timeout=15)).output
        await ctx.progress(80, "Reading uptime", "uptime")
        uptime_text = (await device.shell("cat /proc/uptime", timeout=15)).output.split()
        match = _DF_RE.search(df)
        report: dict[str, Any] = {
            "serial": device.serial,
            "battery_level": battery.level,
            "temperature_c": battery.temperature_c,
            "charging": battery.charging,
            "data_free_mb": round(int(match.group(3)) / 1024, 1) if match else None,
            "uptime_s": _first_float(uptime_text),
        }
        problems = []
        if battery.level is not None and battery.level < payload["min_battery"]:
            problems.append(f"battery {battery.level}% is below {payload['min_battery']}%")
        temp = battery.temperature_c
        if temp is not None and temp > payload["max_temperature_c"]:
            problems.append(f"temperature {temp:.1f} °C is above "
                            f"{payload['max_temperature_c']:.1f} °C")
        await ctx.progress(100, "Done", "finalize")
        if problems:
            raise RuntimeError("unhealthy: " + "; ".join(problems) + f" ({report})")
        return report


def _first_float(words: list[str]) -> float | None:
    try:
        return float(words[0])
    except (IndexError, ValueError):
        return None
