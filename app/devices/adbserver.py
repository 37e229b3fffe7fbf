"""A private, real adb server owned by TaskDesk (the binary bundled with adbutils).

Never the default port 5037 and never the user's ``~/.android``: the server
runs as our child (``adb -P PORT server nodaemon``) with a private ``HOME``,
mDNS, USB and the emulator scan switched off, so it only ever sees the phones
it is told to ``connect``. It is stopped in ``stop()``, at interpreter exit,
and, on Linux, killed by the kernel if our process dies (``PR_SET_PDEATHSIG``).

The few host requests we need (version, kill, connect, disconnect, devices)
are spoken directly over the socket: adbutils' client would start a server on
5037 by itself whenever ours does not answer.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

HOST = "127.0.0.1"
DEFAULT_SERVER_PORT = 5037
EMULATOR_PORTS = range(5554, 5586)
# adb's own: its server's default port and the emulator console/adb pairs it scans.
RESERVED_PORTS = frozenset({DEFAULT_SERVER_PORT, *EMULATOR_PORTS})

# Everything that could make the server reach beyond the phones we connect.
SERVER_ENV = {
    "ADB_MDNS": "0",
    "ADB_MDNS_AUTO_CONNECT": "0",
    "ADB_MDNS_OPENSCREEN": "0",
    "ADB_LIBUSB": "0",
    "ADB_USB": "0",
    "ADB_EMU": "0",  # no emulator scan of 127.0.0.1:5555-5585
}
# Inherited settings that would redirect the server or its keys.
SCRUBBED_ENV = (
    "ANDROID_SERIAL",
    "ANDROID_ADB_SERVER_ADDRESS",
    "ANDROID_ADB_SERVER_PORT",
    "ADB_SERVER_SOCKET",
    "ADB_VENDOR_KEYS",
    "ANDROID_SDK_HOME",
    "ANDROID_USER_HOME",
    "ANDROID_ADB_LOG_PATH",
    "ADB_REJECT_KILL_SERVER",
    "ADB_TRACE",
)


class AdbServerError(Exception):
    """The adb server refused a request, could not start, or does not answer."""


def bundled_adb_path() -> Path:
    """The adb binary shipped inside the adbutils wheel.

    Located explicitly: ``adbutils.adb_path()`` honours ``ADBUTILS_ADB_PATH``
    (``/bin/false`` in the tests) and may fall back to whatever is on PATH.

    Raises:
        FileNotFoundError: the wheel has no adb for this platform.
    """
    import adbutils

    name = "adb.exe" if sys.platform == "win32" else "adb"
    path = Path(adbutils.__file__).resolve().parent / "binaries" / name
    if not path.is_file():
        raise FileNotFoundError(f"adbutils ships no adb binary at {path}")
    return path


def pick_free_port(host: str = HOST) -> int:
    """A free loopback port that stays ours while we are not listening on it.

    Ports come from below the kernel's ephemeral range: outgoing connections
    (adb makes many) are given ephemeral ports, so a phone that is unplugged
    for a moment, or an adb server being restarted, finds its port still free
    when it listens again. adb's own ports (5037, 5554-5585) are never chosen.
    """
    low, high = _stable_port_range()
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randint(low, high)
        if port in RESERVED_PORTS:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        return port
    raise OSError(f"no free port in {low}-{high}")


def pick_server_port(host: str = HOST) -> int:
    """A free port for an adb server (see :func:`pick_free_port`)."""
    return pick_free_port(host)


def _stable_port_range() -> tuple[int, int]:
    """Ports below the ephemeral range (Linux reads it; elsewhere it starts at 49152)."""
    ephemeral_start = 49152
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        ephemeral_start = int(text.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    high = min(ephemeral_start - 1, 32767)
    low = 20000 if high - 20000 >= 2000 else 10000
    return low, high


def host_request(host: str, port: int, request: str, *, timeout: float = 5.0,
                 reply: bool = True) -> str:
    """Send one adb host request (``host:version``...) and read its reply block.

    Raises:
        AdbServerError: the server answered FAIL (its message) or spoke nonsense.
        OSError: nothing answers on ``host:port``.
    """
    payload = request.encode()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(f"{len(payload):04x}".encode() + payload)
        status = _recv_exact(sock, 4)
        if status == b"FAIL":
            raise AdbServerError(_read_block(sock))
        if status != b"OKAY":
            raise AdbServerError(f"unexpected reply {status!r} to {request}")
        return _read_block(sock) if reply else ""


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise AdbServerError("adb server closed the connection")
        data += chunk
    return bytes(data)


def _read_block(sock: socket.socket) -> str:
    length = int(_recv_exact(sock, 4), 16)
    return _recv_exact(sock, length).decode("utf-8", "replace") if length else ""


class PrivateAdbServer:
    """A real adb server process on a private loopback port, owned by us."""

    def __init__(self, home: Path, port: int | None = None,
                 adb_path: Path | None = None) -> None:
        if port is not None and port in RESERVED_PORTS:
            raise ValueError(f"refusing adb server port {port}: 5037 and 5554-5585 are adb's")
        self.home = Path(home)
        self.host = HOST
        self._fixed_port = port is not None
        self.port = port if port is not None else pick_server_port()
        self.adb_path = adb_path or bundled_adb_path()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._lock = threading.RLock()
        _LIVE_SERVERS.add(self)

    @property
    def log_path(self) -> Path:
        return self.home / "adb-server.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 15.0) -> None:
        """Start the server (idempotent) and wait until it answers ``host:version``.

        Raises:
            AdbServerError: it exited or did not answer within ``timeout``.
        """
        with self._lock:
            if self.alive():
                return
            self._cleanup()
            attempts = 1 if self._fixed_port else 3
            for attempt in range(attempts):
                try:
                    self._launch(timeout)
                    return
                except AdbServerError:
                    self._cleanup()
                    if attempt + 1 == attempts:
                        raise
                    self.port = pick_server_port()  # lost a race for the port: try another

    def stop(self) -> None:
        """Ask the server to quit (``host:kill``), then make sure the process is gone."""
        with self._lock:
            proc = self._proc
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(OSError, AdbServerError):
                    host_request(self.host, self.port, "host:kill", timeout=2.0, reply=False)
                try:
                    proc.wait(3.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5.0)
            self._cleanup()

    def kill(self) -> None:
        """SIGKILL the server, as a crash would."""
        with self._lock:
            proc = self._proc
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(5.0)

    def restart(self) -> None:
        self.stop()
        self.start()

    def alive(self) -> bool:
        """Whether our server process is running."""
        return self._proc is not None and self._proc.poll() is None

    def version(self) -> int:
        """The server's protocol version (``host:version``, e.g. 41)."""
        return int(host_request(self.host, self.port, "host:version"), 16)

    def connect(self, address: str) -> str:
        """``adb connect ADDRESS``; returns adb's message.

        Raises:
            AdbServerError: adb could not connect (its message says why).
        """
        message = host_request(self.host, self.port, f"host:connect:{address}", timeout=15.0)
        if not message.startswith(("connected to", "already connected to")):
            raise AdbServerError(message or f"adb connect {address} failed")
        return message

    def disconnect(self, address: str) -> None:
        """``adb disconnect ADDRESS``; a device adb does not know is not an error."""
        try:
            host_request(self.host, self.port, f"host:disconnect:{address}")
        except AdbServerError as exc:
            if "no such device" not in str(exc):
                raise

    def devices(self) -> list[tuple[str, str]]:
        """``(serial, state)`` for every device the server lists."""
        listing = host_request(self.host, self.port, "host:devices")
        rows: list[tuple[str, str]] = []
        for line in listing.splitlines():
            serial, _, state = line.partition("\t")
            if serial and state:
                rows.append((serial, state.strip()))
        return rows

    # -- internals -----------------------------------------------------------------

    def _launch(self, timeout: float) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        env.update(SERVER_ENV)
        env["HOME"] = str(self.home)
        self._log = self.log_path.open("ab")
        argv = [str(self.adb_path), "-P", str(self.port), "server", "nodaemon"]
        self._proc = _spawn(argv, env=env, cwd=self.home, log=self._log)
        _CHILDREN.add(self._proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise AdbServerError(
                    f"adb server exited with {self._proc.returncode} on port {self.port}: "
                    f"{self._log_tail()}"
                )
            with contextlib.suppress(OSError, AdbServerError, ValueError):
                int(host_request(self.host, self.port, "host:version", timeout=1.0), 16)
                return
            time.sleep(0.03)
        raise AdbServerError(f"adb server on port {self.port} did not answer in {timeout:.0f}s")

    def _cleanup(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5.0)
            _CHILDREN.discard(proc)
        log, self._log = self._log, None
        if log is not None:
            log.close()

    def _log_tail(self, size: int = 600) -> str:
        try:
            return self.log_path.read_bytes()[-size:].decode("utf-8", "replace").strip()
        except OSError:
            return ""


# -- process ownership ---------------------------------------------------------------

_LIVE_SERVERS: weakref.WeakSet[PrivateAdbServer] = weakref.WeakSet()
# Every server process we started and have not reaped, even if its owner object
# was garbage-collected without stop().
_CHILDREN: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _stop_all_servers() -> None:
    for server in list(_LIVE_SERVERS):
        with contextlib.suppress(Exception):
            server.stop()
    for proc in list(_CHILDREN):
        with contextlib.suppress(Exception):
            proc.kill()
            proc.wait(5.0)
    _CHILDREN.clear()


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class _Spawner:
    """Starts children from one thread that lives as long as the process.

    ``PR_SET_PDEATHSIG`` fires when the *thread* that forked the child ends,
    not the process; spawning from a short-lived worker thread would kill the
    server as soon as that thread finished. This thread never ends.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name="adb-spawner", daemon=True)
        self._thread.start()

    def call(self, fn: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        future: Future[subprocess.Popen[bytes]] = Future()
        self._jobs.put((fn, future))
        return future.result()

    def _run(self) -> None:
        while True:
            fn, future = self._jobs.get()
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)


_spawner: _Spawner | None = None
_spawner_lock = threading.Lock()


def _spawn(argv: list[str], *, env: dict[str, str], cwd: Path,
           log: IO[bytes]) -> subprocess.Popen[bytes]:
    def launch() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal is ours to handle, not adb's
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
        )

    if sys.platform != "linux":
        return launch()
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = _Spawner()
    return _spawner.call(launch)
