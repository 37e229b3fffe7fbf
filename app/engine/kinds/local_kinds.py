"""Built-in task kinds that run on the console host: a program (argv) and an HTTP request.

Both follow the reference agent's ``execute`` and ``http_request`` (reference
004) so an operator sees the same output and result shapes whether a check ran
on this host or on a remote agent. Each lives in its own module
(:mod:`~app.engine.kinds.local_exec`, :mod:`~app.engine.kinds.local_http`); this
one lists them for the registry and keeps their public names importable from
here.
"""

from __future__ import annotations

from app.engine.kinds.base import TaskKind
from app.engine.kinds.local_exec import (
    LocalExecuteKind,
    ProcessExitError,
    ProcessTimeoutError,
    merge_output,
)
from app.engine.kinds.local_http import HttpRequestError, LocalHttpRequestKind
from app.engine.kinds.local_process import GroupProcess, ProcessOutcome, group_has_live_members

__all__ = [
    "LOCAL_KINDS",
    "GroupProcess",
    "HttpRequestError",
    "LocalExecuteKind",
    "LocalHttpRequestKind",
    "ProcessExitError",
    "ProcessOutcome",
    "ProcessTimeoutError",
    "group_has_live_members",
    "merge_output",
]

LOCAL_KINDS: tuple[type[TaskKind], ...] = (LocalExecuteKind, LocalHttpRequestKind)
