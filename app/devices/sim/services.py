"""The services a simulated phone offers on an adb stream, chosen by name at ``OPEN``.

- ``shell:CMD`` (v1: one raw byte stream, no exit status; adbutils' ``shell2``
  then appends ``; echo X4EXIT:$?``) and ``shell,v2,...:CMD`` (packets for
  stdin/stdout/stderr and an exit-status packet);
- an empty command opens an interactive shell (a PTY with prompt and echo, or
  raw without either: ``shell,v2,raw:``), with Ctrl-C interrupting a command;
- ``exec:CMD`` (raw, like ``adb exec-out``), ``sync:``, ``reboot:``, ``root:``.
"""

from __future__ import annotations

import asyncio
import struct
from functools import partial

from app.devices.sim import android, android_pm, toybox  # noqa: F401 - registers commands
from app.devices.sim.shell import BytesSource, ShellRuntime, Source
from app.devices.sim.state import PhoneState
from app.devices.sim.syncsvc import sync_service
from app.devices.sim.transport import ServiceFn, Stream, StreamClosedError

V2_STDIN, V2_STDOUT, V2_STDERR, V2_EXIT, V2_CLOSE_STDIN, V2_WINDOW = 0, 1, 2, 3, 4, 5
_V2_HEADER = struct.Struct("<BI")
CTRL_C, CTRL_D, BACKSPACE, DELETE = 0x03, 0x04, 0x08, 0x7F


def open_service(state: PhoneState, name: str) -> ServiceFn | None:
    """The coroutine function serving ``name``, or None for an unknown service."""
    if name.startswith("shell"):
        head, sep, cmd = name.partition(":")
        options = head.split(",")[1:]
        if not sep or head.split(",")[0] != "shell":
            return None
        v2 = "v2" in options
        pty = "pty" in options or ("raw" not in options and cmd == "")
        return partial(shell_service, state=state, command=cmd, v2=v2, pty=pty)
    if name.startswith("exec:"):
        return partial(shell_service, state=state, command=name[5:], v2=False, pty=False)
    if name.startswith("sync:"):
        return partial(sync_service, fs=state.fs)
    if name.startswith("reboot:"):
        return partial(_reboot_service, state=state)
    if name in ("root:", "unroot:", "remount:"):
        return partial(_message_service, text="adbd cannot run as root in production builds\n")
    return None


class StreamSink:
    """Writes to the adb stream: raw (v1) or as v2 packets on a channel; PTY adds CRs."""

    def __init__(self, stream: Stream, channel: int | None, pty: bool) -> None:
        self._stream = stream
        self._channel = channel
        self._pty = pty

    async def write(self, data: bytes) -> None:
        if not data:
            return
        if self._pty:
            data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if self._channel is not None:
            data = _V2_HEADER.pack(self._channel, len(data)) + data
        await self._stream.write(data)


class StreamSource:
    """The host's input: raw bytes (v1) or the stdin packets of shell v2."""

    def __init__(self, stream: Stream, v2: bool) -> None:
        self._stream = stream
        self._v2 = v2
        self._eof = False

    async def read(self) -> bytes:
        if self._eof:
            return b""
        if not self._v2:
            data = await self._stream.read()
            self._eof = not data
            return data
        try:
            while True:
                header = await self._stream.read_exactly(_V2_HEADER.size)
                kind, length = _V2_HEADER.unpack(header)
                data = await self._stream.read_exactly(length) if length else b""
                if kind == V2_STDIN and data:
                    return data
                if kind == V2_CLOSE_STDIN:
                    break
        except StreamClosedError:
            pass
        self._eof = True
        return b""


async def shell_service(stream: Stream, *, state: PhoneState, command: str, v2: bool,
                        pty: bool) -> None:
    """Run one shell command (or an interactive session if ``command`` is empty)."""
    out = StreamSink(stream, V2_STDOUT if v2 else None, pty)
    err = StreamSink(stream, V2_STDERR if v2 else None, pty)
    source = StreamSource(stream, v2)
    if command.strip() == "":
        status = await _interactive(stream, state, out, err, source, pty)
    else:
        state.commands_run += 1
        if state.latency > 0:
            await asyncio.sleep(state.latency)
        runtime = ShellRuntime(state, out, err, source)
        status = await runtime.run(command)
    if v2:
        await stream.write(_V2_HEADER.pack(V2_EXIT, 1) + bytes([status & 0xFF]))


async def _interactive(stream: Stream, state: PhoneState, out: StreamSink, err: StreamSink,
                       source: Source, pty: bool) -> int:
    session = _InteractiveShell(state, out, err, source, pty)
    return await session.run()


class _InteractiveShell:
    """A line-based shell session: prompt, echo and line editing when ``pty``.

    Input is read while a command runs, so Ctrl-C can interrupt it and typed
    lines queue up. At end of input the queued lines still run, then the
    session ends, as ``sh`` does; a closed stream ends it at once.
    """

    def __init__(self, state: PhoneState, out: StreamSink, err: StreamSink, source: Source,
                 pty: bool) -> None:
        self._state = state
        self._out = out
        self._source = source
        self._pty = pty
        self._runtime = ShellRuntime(state, out, err, BytesSource())
        self._prompt = f"{state.profile.device}:/ $ ".encode() if pty else b""
        self._lines: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._current: asyncio.Task[int] | None = None

    async def run(self) -> int:
        runner = asyncio.get_running_loop().create_task(self._execute())
        try:
            await self._read_input(runner)
        except BaseException:
            if self._current is not None:
                self._current.cancel()
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            raise
        await self._lines.put(None)
        await runner
        return self._runtime.last_status

    async def _execute(self) -> None:
        await self._out.write(self._prompt)
        while (line := await self._lines.get()) is not None:
            self._state.commands_run += 1
            task = asyncio.get_running_loop().create_task(
                self._runtime.run(line.decode("utf-8", "replace"))
            )
            self._current = task
            await asyncio.wait({task})
            self._current = None
            if self._runtime.exited:
                return
            await self._out.write(self._prompt)

    async def _read_input(self, runner: asyncio.Task[None]) -> None:
        buffer = bytearray()
        previous = 0
        while True:
            read = asyncio.get_running_loop().create_task(self._source.read())
            await asyncio.wait({read, runner}, return_when=asyncio.FIRST_COMPLETED)
            if not read.done():  # the session ended (exit) while we waited for input
                read.cancel()
                return
            data = read.result()
            if not data:
                if buffer:
                    await self._lines.put(bytes(buffer))
                return
            for byte in data:
                crlf, previous = previous == ord("\r") and byte == ord("\n"), byte
                if not crlf:  # "\r\n" ends one line, not two
                    await self._key(byte, buffer)

    async def _key(self, byte: int, buffer: bytearray) -> None:
        echo = self._out.write if self._pty else _no_echo
        if byte == CTRL_C:
            buffer.clear()
            running = self._current is not None
            if self._current is not None:
                self._current.cancel()
            await echo(b"^C\n" + (b"" if running else self._prompt))
        elif byte == CTRL_D and not buffer:
            await self._lines.put(b"exit")
        elif byte in (ord("\r"), ord("\n")):
            await echo(b"\n")
            await self._lines.put(bytes(buffer))
            buffer.clear()
        elif byte in (BACKSPACE, DELETE):
            if buffer:
                del buffer[-1]
                await echo(b"\b \b")
        else:
            buffer.append(byte)
            await echo(bytes([byte]))


async def _no_echo(data: bytes) -> None:
    return None


async def _reboot_service(stream: Stream, *, state: PhoneState) -> None:
    state.request_reboot()


async def _message_service(stream: Stream, *, text: str) -> None:
    await stream.write(text.encode())
