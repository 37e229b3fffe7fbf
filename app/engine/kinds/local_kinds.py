"""Built-in task kinds that run on the console host: a program (argv) and an HTTP request.

Both follow the reference agent's ``execute`` and ``http_request`` (reference
004) so an operator sees the same output and result shapes whether a check ran
on this host or on a remote agent.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import errno
import os
import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.core.errors import ValidationError
from app.core.output import HeadTailBuffer
from app.core.payload import Field, Schema
from app.engine.kinds.base import HOST_TARGETS, PermanentError, RunContext, TaskKind

MAX_OUTPUT_LIMIT = 16 * 1024 * 1024
ERROR_TAIL_CHARS = 2000
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
ENV_NAME_RE = re.compile(r"^[^=\x00]+$")
TERM_GRACE_S = 2.0  # SIGTERM to SIGKILL, as the reference agent
PIPE_GRACE_S = 0.5
EXIT_POLL_S = 0.1
READ_CHUNK = 64 * 1024
OMITTED_MARKER = "\n[... {} bytes omitted ...]\n"  # the same marker as app.core.output


class ProcessExitError(Exception):
    """The program ran and exited with a nonzero code (and ``check`` was on)."""


class ProcessTimeoutError(TimeoutError):
    """The program outlived its ``timeout_s``; its process group was killed."""


class HttpRequestError(Exception):
    """The HTTP request did not get a response (refused, reset, DNS, timeout)."""


def _error_tail(text: str) -> str:
    return text[-ERROR_TAIL_CHARS:].rstrip()


@dataclass(frozen=True)
class ProcessOutcome:
    exit_code: int
    stdout: HeadTailBuffer
    stderr: HeadTailBuffer
    timed_out: bool = False


class GroupProcess:
    """A child in its own session (so its process group is ours to signal), with its
    stdout and stderr drained into head+tail buffers so it can never block on a pipe.

    The task owns the whole group: on timeout or cancellation the group gets
    SIGTERM, then SIGKILL after ``TERM_GRACE_S``; whatever is left of the group when
    the main process exits is terminated the same way.
    """

    def __init__(self, proc: asyncio.subprocess.Process, output_limit: int) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.stdout = HeadTailBuffer(output_limit)
        self.stderr = HeadTailBuffer(output_limit)
        assert proc.stdout is not None and proc.stderr is not None
        self._readers = [
            asyncio.create_task(_drain(proc.stdout, self.stdout), name=f"stdout-{proc.pid}"),
            asyncio.create_task(_drain(proc.stderr, self.stderr), name=f"stderr-{proc.pid}"),
        ]

    @classmethod
    async def start(cls, argv: Sequence[str], *, cwd: str | None, env: dict[str, str] | None,
                    output_limit: int) -> GroupProcess:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        return cls(proc, output_limit)

    async def wait(self, timeout: float | None) -> ProcessOutcome:
        """Wait for the exit (killing the group on timeout); on cancellation kill it too."""
        timed_out = False
        try:
            try:
                async with asyncio.timeout(timeout):
                    await self._exited()
            except TimeoutError:
                timed_out = True
                await self.terminate_group()
            await self._collect_output()
        except BaseException:  # cancelled: stop the work for real before unwinding
            await self.terminate_group()
            await self._stop_readers(PIPE_GRACE_S)
            raise
        code = self.proc.returncode
        assert code is not None
        return ProcessOutcome(code, self.stdout, self.stderr, timed_out)

    async def terminate_group(self) -> None:
        """SIGTERM the group, wait up to ``TERM_GRACE_S`` for it to go, then SIGKILL."""
        try:
            self._signal_group(signal.SIGTERM)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + TERM_GRACE_S
            while loop.time() < deadline:
                if self.proc.returncode is not None and not await self._group_alive():
                    break
                await asyncio.sleep(0.05)
        finally:
            # Also when cancelled again during the grace period: never leave it running.
            self._signal_group(signal.SIGKILL)
        await self._exited()

    async def _exited(self) -> None:
        """Return once the main process has exited.

        On Python 3.11 ``Process.wait()`` also waits for both pipes to close, which a
        backgrounded grandchild can delay indefinitely; ``returncode`` is set at exit,
        so poll it alongside.
        """
        waiter = asyncio.ensure_future(self.proc.wait())
        try:
            while self.proc.returncode is None and not waiter.done():
                await asyncio.wait([waiter], timeout=EXIT_POLL_S)
        finally:
            waiter.cancel()

    async def _collect_output(self) -> None:
        """Read the pipes to their end; group members left behind are terminated."""
        if await self._group_alive():
            await self.terminate_group()
        await self._stop_readers(PIPE_GRACE_S)

    async def _stop_readers(self, grace: float) -> None:
        _, pending = await asyncio.wait(self._readers, timeout=grace)
        for task in pending:  # a process that left the group still holds a pipe
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
            os.killpg(self.pid, sig)

    async def _group_alive(self) -> bool:
        return await asyncio.to_thread(group_has_live_members, self.pid)


def group_has_live_members(pgid: int) -> bool:
    """Whether process group ``pgid`` still has a process that is not a zombie.

    ``killpg(pgid, 0)`` also counts zombies, and in a container whose PID 1 does
    not reap orphans, they never go away; on Linux /proc tells them apart.
    """
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        entries = [e for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:
        return True  # no /proc: trust killpg
    for entry in entries:
        try:
            with open(os.path.join(entry.path, "stat"), "rb") as fh:
                stat = fh.read()
        except OSError:
            continue  # the process ended meanwhile
        # "pid (comm) state ppid pgrp ..."; comm may contain spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


async def _drain(stream: asyncio.StreamReader, buffer: HeadTailBuffer) -> None:
    while chunk := await stream.read(READ_CHUNK):
        buffer.write(chunk)


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


class LocalHttpRequestKind(TaskKind):
    name = "local.http_request"
    title = "HTTP request from this host"
    description = "Send one HTTP request from the console host and record the response."
    targets = HOST_TARGETS
    schema = Schema((
        Field("url", "str", required=True, max_length=8192, help="http:// or https:// URL."),
        Field("method", "str", default="GET", choices=HTTP_METHODS),
        Field("headers", "json", help="Request headers, {\"Name\": \"value\"}."),
        Field("body", "str", help="Request body as text (UTF-8)."),
        Field("body_base64", "str", help="Request body as base64 (binary); not with body."),
        Field("timeout_s", "float", default=30.0, min=0.1, max=3600.0,
              help="Give up when the whole exchange takes longer."),
        Field("max_body_bytes", "int", default=1024 * 1024, min=0, max=64 * 1024 * 1024,
              help="Keep at most this many bytes of the response body."),
        Field("follow_redirects", "bool", default=False),
    ))

    def validate(self, payload: Any) -> dict[str, Any]:
        if isinstance(payload, dict) and isinstance(payload.get("method"), str):
            payload = {**payload, "method": payload["method"].strip().upper()}
        out = super().validate(payload)
        parts = urlsplit(out["url"].strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError(
                "payload field 'url' must be an http:// or https:// URL with a host", field="url"
            )
        out["url"] = out["url"].strip()
        headers = out.get("headers")
        if headers is not None and not _valid_headers(headers):
            raise ValidationError(
                "payload field 'headers' must map header names to single-line strings",
                field="headers",
            )
        if out.get("body") is not None and out.get("body_base64") is not None:
            raise ValidationError(
                "payload fields 'body' and 'body_base64' are mutually exclusive",
                field="body_base64",
            )
        if out.get("body_base64") is not None:
            try:
                base64.b64decode(out["body_base64"], validate=True)
            except (binascii.Error, ValueError):
                raise ValidationError(
                    "payload field 'body_base64' is not valid base64", field="body_base64"
                ) from None
        return out

    async def run(self, ctx: RunContext, payload: dict[str, Any]) -> dict[str, Any]:
        url, timeout = payload["url"], payload["timeout_s"]
        content: bytes | None = None
        if payload.get("body") is not None:
            content = payload["body"].encode()
        elif payload.get("body_base64") is not None:
            content = base64.b64decode(payload["body_base64"])
        try:
            async with asyncio.timeout(timeout), httpx.AsyncClient(
                timeout=timeout, follow_redirects=payload["follow_redirects"]
            ) as client, client.stream(
                payload["method"], url, headers=payload.get("headers"), content=content
            ) as response:
                body, truncated = await _read_body(response, payload["max_body_bytes"])
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise HttpRequestError(f"{payload['method']} {url}: no response within "
                                   f"{timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise HttpRequestError(f"{payload['method']} {url}: {type(exc).__name__}: {exc}") \
                from exc
        return _http_result(response, body, truncated)


def _valid_env(env: Any) -> bool:
    return isinstance(env, dict) and all(
        isinstance(k, str) and ENV_NAME_RE.match(k) and isinstance(v, str) and "\x00" not in v
        for k, v in env.items()
    )


def _valid_headers(headers: Any) -> bool:
    return isinstance(headers, dict) and all(
        isinstance(k, str) and HEADER_NAME_RE.match(k) and isinstance(v, str)
        and "\r" not in v and "\n" not in v
        for k, v in headers.items()
    )


async def _read_body(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """Read at most ``limit`` bytes of the (decoded) body; say whether more was left."""
    data = bytearray()
    async for chunk in response.aiter_bytes():
        room = limit - len(data)
        if len(chunk) > room:
            data += chunk[:room]
            return bytes(data), True
        data += chunk
    return bytes(data), False


def _http_result(response: httpx.Response, body: bytes, truncated: bool) -> dict[str, Any]:
    """The reference's ``http_request`` result: headers as single-key maps, duplicates kept."""
    encoding = response.headers.encoding
    result: dict[str, Any] = {
        "status": response.status_code,
        "headers": [{k.decode(encoding): v.decode(encoding)} for k, v in response.headers.raw],
    }
    text = _utf8_or_none(body, truncated)
    if text is not None:
        result["body"] = text
    else:
        result["body_base64"] = base64.b64encode(body).decode("ascii")
    if truncated:
        result["truncated"] = True
    return result


def _utf8_or_none(body: bytes, truncated: bool) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A cap can cut a character in half; that alone does not make the body binary.
        if truncated and exc.start >= len(body) - 3 and exc.reason == "unexpected end of data":
            return body[: exc.start].decode("utf-8")
        return None


LOCAL_KINDS: tuple[type[TaskKind], ...] = (LocalExecuteKind, LocalHttpRequestKind)
