"""An example TaskDesk plugin: one task kind, ``example.echo``.

A real plugin is an ordinary distribution that declares, in its pyproject.toml::

    [project.entry-points."taskdesk.task_kinds"]
    echo = "taskdesk_example_plugin:EchoKind"

This directory carries the installed form of that declaration
(``taskdesk_example_plugin-1.0.dist-info/entry_points.txt``) so the tests can
put it on ``sys.path`` and exercise the same discovery an installed plugin gets.
"""

from __future__ import annotations

from typing import Any

from app.core.payload import Field, Schema
from app.engine.kinds.base import HOST_TARGETS, RunContext, TaskKind


class EchoKind(TaskKind):
    name = "example.echo"
    title = "Echo"
    description = "Return the text it was given (an example plugin kind)."
    targets = HOST_TARGETS
    schema = Schema((Field("text", "str", required=True, max_length=10_000,
                           help="Text to echo back."),))

    async def run(self, ctx: RunContext, payload: dict[str, Any]) -> dict[str, Any]:
        await ctx.progress(percent=100, message="echoed", step="echo")
        return {"echo": payload["text"]}
