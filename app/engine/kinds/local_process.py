"""A program run in its own process group, for ``local.execute``.

The task owns the whole group: its output is drained into head+tail buffers
(so the child never blocks on a pipe), and on timeout or cancellation every
member of the group is terminated, not just the main process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass

from app.core.output import HeadTailBuffer

TERM_GRACE_S = 2.0  # SIGTERM to SIGKILL, as the reference agent
PIPE_GRACE_S = 0.5
EXIT_POLL_S = 0.1
READ_CHUNK = 64 * 1024


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
