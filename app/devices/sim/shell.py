"""Run parsed command lines against a phone's state: the sim's ``/system/bin/sh``.

Commands are small async functions registered by name (see :mod:`toybox`
and :mod:`android`). Each gets a :class:`Ctx` with the phone state and its
stdin/stdout/stderr, and returns an exit status. Output goes through sinks so
the same command can write to an adb stream, a file (``>``) or a pipe.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from app.devices.sim.fs import FsError, normalize
from app.devices.sim.shellparse import (
    AndOr,
    Command,
    Pipeline,
    ShellSyntaxError,
    Var,
    Word,
    parse,
)
from app.devices.sim.state import PhoneState

SH = "/system/bin/sh"
STATUS_NOT_FOUND = 127


class Sink(Protocol):
    async def write(self, data: bytes) -> None: ...


class Source(Protocol):
    async def read(self) -> bytes:
        """The next chunk of input; b"" at end of input."""
        ...


class BufferSink:
    def __init__(self) -> None:
        self.data = bytearray()

    async def write(self, data: bytes) -> None:
        self.data += data


class NullSink:
    async def write(self, data: bytes) -> None:
        return None


class BytesSource:
    def __init__(self, data: bytes = b"") -> None:
        self._data: bytes | None = data

    async def read(self) -> bytes:
        data, self._data = self._data or b"", None
        return data


class ExitShellError(Exception):
    """``exit N``: stop the whole script with this status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass
class Ctx:
    """What a command sees: the phone and its three standard streams."""

    state: PhoneState
    stdout: Sink
    stderr: Sink
    stdin: Source
    runtime: ShellRuntime
    name: str = ""

    async def out(self, text: str | bytes) -> None:
        await self.stdout.write(text.encode() if isinstance(text, str) else text)

    async def err(self, text: str) -> None:
        await self.stderr.write(text.encode())

    async def fail(self, message: str, status: int = 1) -> int:
        """Write ``name: message`` to stderr and return ``status``."""
        await self.err(f"{self.name}: {message}\n")
        return status

    async def read_all_stdin(self) -> bytes:
        chunks = bytearray()
        while chunk := await self.stdin.read():
            chunks += chunk
        return bytes(chunks)

    def path(self, raw: str) -> str:
        return normalize(raw, self.runtime.cwd)


CommandFn = Callable[[Ctx, list[str]], Awaitable[int]]
COMMANDS: dict[str, CommandFn] = {}


def command(*names: str) -> Callable[[CommandFn], CommandFn]:
    """Register a command function under one or more names."""

    def register(fn: CommandFn) -> CommandFn:
        for name in names:
            COMMANDS[name] = fn
        return fn

    return register


@dataclass
class ShellRuntime:
    """One shell process: its status, cwd and standard streams."""

    state: PhoneState
    stdout: Sink
    stderr: Sink
    stdin: Source = field(default_factory=BytesSource)
    last_status: int = 0
    cwd: str = "/"
    exited: bool = False  # an ``exit`` ran: an interactive session ends

    async def run(self, text: str) -> int:
        """Run a command line; returns the status of the last command run."""
        try:
            script = parse(text)
        except ShellSyntaxError as exc:
            await self.stderr.write(f"{SH}: {exc}\n".encode())
            self.last_status = 2
            return 2
        try:
            for and_or in script:
                await self._run_and_or(and_or)
        except ExitShellError as exc:
            self.last_status = exc.status & 0xFF
            self.exited = True
        return self.last_status

    async def _run_and_or(self, and_or: AndOr) -> None:
        self.last_status = await self._run_pipeline(and_or.first)
        for op, pipeline in and_or.rest:
            if (op == "&&") == (self.last_status == 0):
                self.last_status = await self._run_pipeline(pipeline)

    async def _run_pipeline(self, pipeline: Pipeline) -> int:
        stdin: Source = self.stdin
        status = 0
        for index, cmd in enumerate(pipeline.commands):
            last = index == len(pipeline.commands) - 1
            # Pipes run stage by stage: each stage's output is the next one's input.
            out: Sink = self.stdout if last else BufferSink()
            status = await self._run_command(cmd, stdin, out)
            if isinstance(out, BufferSink):
                stdin = BytesSource(bytes(out.data))
        return status

    async def _run_command(self, cmd: Command, stdin: Source, stdout: Sink) -> int:
        argv = [self.expand(word) for word in cmd.words]
        stderr: Sink = self.stderr
        files: list[tuple[str, BufferSink, bool]] = []
        for redirect in cmd.redirects:
            if redirect.op == ">&":
                target = stdout if redirect.target == 1 else stderr
                if redirect.fd == 2:
                    stderr = target
                elif redirect.fd == 1:
                    stdout = target
                continue
            assert isinstance(redirect.target, Word)
            path = normalize(self.expand(redirect.target), self.cwd)
            if redirect.op == "<":
                if path == "/dev/null":
                    stdin = BytesSource(b"")
                    continue
                try:
                    stdin = BytesSource(self.state.fs.read(path))
                except FsError as exc:
                    await self.stderr.write(f"{SH}: can't open '{path}': {exc}\n".encode())
                    return 1
                continue
            sink: Sink
            if path == "/dev/null":
                sink = NullSink()
            else:
                buffer = BufferSink()
                files.append((path, buffer, redirect.op == ">>"))
                sink = buffer
            if redirect.fd == 2:
                stderr = sink
            else:
                stdout = sink
        if not argv:
            return await self._flush_files(files, 0)
        name = argv[0].removeprefix("/system/bin/").removeprefix("/system/xbin/")
        fn = COMMANDS.get(name)
        if fn is None:
            await stderr.write(f"{SH}: {argv[0]}: inaccessible or not found\n".encode())
            return await self._flush_files(files, STATUS_NOT_FOUND)
        ctx = Ctx(self.state, stdout, stderr, stdin, self, name)
        try:
            status = await fn(ctx, argv[1:])
        finally:
            # Like a real shell, what was written before a failure (or cancel) stays in the file.
            await self._flush_files(files, 0)
        return status & 0xFF

    async def _flush_files(self, files: list[tuple[str, BufferSink, bool]], status: int) -> int:
        for path, buffer, append in files:
            try:
                self.state.fs.write(path, bytes(buffer.data), append=append)
            except FsError as exc:
                await self.stderr.write(f"{SH}: can't create {path}: {exc}\n".encode())
                status = 1
        return status

    def expand(self, word: Word) -> str:
        out: list[str] = []
        for part in word.parts:
            if isinstance(part, Var):
                out.append(self._variable(part.name))
            else:
                out.append(part)
        return "".join(out)

    def _variable(self, name: str) -> str:
        if name == "?":
            return str(self.last_status)
        if name == "$":
            return "4242"
        env = {
            "HOME": "/",
            "PATH": "/product/bin:/apex/com.android.runtime/bin:/system/bin:/system/xbin",
            "USER": "shell",
            "HOSTNAME": self.state.profile.device,
            "ANDROID_ROOT": "/system",
            "ANDROID_DATA": "/data",
            "EXTERNAL_STORAGE": "/sdcard",
            "PWD": self.cwd,
        }
        return env.get(name, "")
