"""``local.execute``: run a program (argv, never a shell) on the console host.

It follows the reference agent's ``execute`` (reference 004): stdout and stderr
are captured, capped and merged the same way, so an operator sees the same
output and result whether a check ran on this host or on a remote agent.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.errors import ValidationError
from app.core.output import HeadTailBuffer
from app.core.payload import Field, Schema
from app.engine.kinds.base import HOST_TARGETS, PermanentError, RunContext, TaskKind
from app.engine.kinds.local_process import GroupProcess, ProcessOutcome

MAX_OUTPUT_LIMIT = 16 * 1024 * 1024
ERROR_TAIL_CHARS = 2000
ENV_NAME_RE = re.compile(r"^[^=\x00]+$")
OMITTED_MARKER = "\n[... {} bytes omitted ...]\n"  # the same marker as app.core.output


class ProcessExitError(Exception):
    """The program ran and exited with a nonzero code (and ``check`` was on)."""


class ProcessTimeoutError(TimeoutError):
    """The program outlived its ``timeout_s``; its process group was killed."""


def _error_tail(text: str) -> str:
    return text[-ERROR_TAIL_CHARS:].rstrip()


@dataclass(frozen=True)
class _Piece:
    """A stretch of output whose first and last bytes are known (all of it if short)."""

    head: bytes
    tail: bytes
    total: int

    @classmethod
    def of(cls, buffer: HeadTailBuffer) -> _Piece:
        data = buffer.getvalue()
        if buffer.omitted == 0:
            return cls(data, data, buffer.total)
        half = max(1, buffer.limit // 2)
        return cls(data[:half], data[-half:], buffer.total)

    @classmethod
    def text(cls, data: bytes) -> _Piece:
        return cls(data, data, len(data))


def merge_output(outcome: ProcessOutcome, limit: int) -> tuple[str, int]:
    """Merge like the reference agent: stdout, ``--- STDERR ---`` and stderr if any,
    ``(No Output)`` if both are empty, ``[Process exited with code N]`` on failure.

    When the merged text exceeds ``limit`` bytes its head and tail halves are kept
    around one marker that counts exactly what was left out (however large the
    streams were); the exit-code line is always kept. Returns (text, omitted bytes).
    """
    pieces = [_Piece.of(outcome.stdout)]
    if outcome.stderr.total:
        newline = b"\n" if outcome.stdout.total and not pieces[0].tail.endswith(b"\n") else b""
        pieces += [_Piece.text(newline + b"--- STDERR ---\n"), _Piece.of(outcome.stderr)]
    total = sum(p.total for p in pieces)
    omitted = 0
    if total == 0:
        body = b"(No Output)"
    elif total <= limit and all(len(p.head) == p.total for p in pieces):
        body = b"".join(p.head for p in pieces)
    else:
        half = limit // 2
        omitted = total - 2 * half
        body = _head(pieces, half) + OMITTED_MARKER.format(omitted).encode() + _tail(pieces, half)
    text = body.decode("utf-8", errors="replace")
    if outcome.exit_code != 0:
        separator = "" if text.endswith("\n") else "\n"
        text += f"{separator}[Process exited with code {outcome.exit_code}]"
    return text, omitted


def _head(pieces: list[_Piece], size: int) -> bytes:
    out = bytearray()
    for piece in pieces:
        take = min(size - len(out), piece.total)
        if take <= 0:
            break
        out += piece.head[:take]
    return bytes(out)


def _tail(pieces: list[_Piece], size: int) -> bytes:
    parts: list[bytes] = []
    for piece in reversed(pieces):
        take = min(size, piece.total)
        if take <= 0:
            break
        parts.append(piece.tail[len(piece.tail) - take:])
        size -= take
    return b"".join(reversed(parts))


class LocalExecuteKind(TaskKind):
    name = "local.execute"
    title = "Run program on this host"
    description = (
        "Run a program given as argv (never through a shell) on the console host; "
        "stdout and stderr are captured, capped, and merged."
    )
    targets = HOST_TARGETS
    schema = Schema((
        Field("argv", "str_list", required=True,
              help="Program and arguments, e.g. [\"ping\", \"-c\", \"1\", \"host\"]. "
                   "Use [\"sh\", \"-c\", \"...\"] explicitly if you need a shell."),
        Field("cwd", "str", help="Working directory (default: the console's)."),
        Field("env", "json", help="Extra environment variables, {\"NAME\": \"value\"}."),
        Field("output_limit", "int", default=64 * 1024, min=256, max=MAX_OUTPUT_LIMIT,
              help="Keep at most this many bytes of output (head and tail)."),
        Field("timeout_s", "float", min=0.1, max=7 * 24 * 3600.0,
              help="Kill the process group after this many seconds."),
        Field("check", "bool", default=True, help="Fail the attempt on a nonzero exit code."),
    ))

    def validate(self, payload: Any) -> dict[str, Any]:
        out = super().validate(payload)
        argv: list[str] = out["argv"]
        if not argv[0].strip():
            raise ValidationError("payload field 'argv' must start with a program", field="argv")
        if any("\x00" in arg for arg in argv):
            raise ValidationError("payload field 'argv' must not contain NUL", field="argv")
        if out.get("cwd") == "":
            del out["cwd"]
        env = out.get("env")
        if env is not None and not _valid_env(env):
            raise ValidationError(
                "payload field 'env' must map variable names to strings", field="env"
            )
        return out

    async def run(self, ctx: RunContext, payload: dict[str, Any]) -> dict[str, Any]:
        argv: list[str] = payload["argv"]
        cwd = payload.get("cwd")
        if cwd is not None and not await ctx.run_blocking(Path(cwd).is_dir):
            raise PermanentError(f"working directory not found: {cwd}")
        env = {**os.environ, **payload["env"]} if payload.get("env") else None
        try:
            process = await GroupProcess.start(argv, cwd=cwd, env=env,
                                               output_limit=payload["output_limit"])
        except OSError as exc:
            if isinstance(exc, FileNotFoundError | PermissionError | NotADirectoryError) or (
                exc.errno == errno.ENOEXEC
            ):
                raise PermanentError(f"cannot run {argv[0]!r}: {exc.strerror or exc}") from exc
            raise
        ctx.log.info("local.execute started pid %d: %s", process.pid, argv)
        outcome = await process.wait(payload.get("timeout_s"))
        return self._result(payload, outcome)

    @staticmethod
    def _result(payload: dict[str, Any], outcome: ProcessOutcome) -> dict[str, Any]:
        output, omitted = merge_output(outcome, payload["output_limit"])
        if outcome.timed_out:
            raise ProcessTimeoutError(
                f"timed out after {payload['timeout_s']:g} s; the process group was killed\n"
                + _error_tail(output)
            )
        if payload["check"] and outcome.exit_code != 0:
            raise ProcessExitError(
                f"process exited with code {outcome.exit_code}\n" + _error_tail(output)
            )
        return {"exit_code": outcome.exit_code, "output": output, "omitted_bytes": omitted}


def _valid_env(env: Any) -> bool:
    return isinstance(env, dict) and all(
        isinstance(k, str) and ENV_NAME_RE.match(k) and isinstance(v, str) and "\x00" not in v
        for k, v in env.items()
    )
