"""The private adb server: a real adb, on a private port, that never outlives us.

Protects: the bundled binary is found without adbutils' env lookup; the server
runs with a private HOME and with mDNS/USB/emulator scanning off; it refuses
adb's own ports; stop/kill/restart do what they say; and the process dies with
its owner even when the owner is killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.devices.adbserver import (
    RESERVED_PORTS,
    AdbServerError,
    PrivateAdbServer,
    bundled_adb_path,
    host_request,
    pick_free_port,
)

REPO = Path(__file__).resolve().parents[2]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still "exists"; it is gone for our purposes.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrivateAdbServer]:
    srv = PrivateAdbServer(tmp_path / "adbhome")
    srv.start()
    yield srv
    srv.stop()


def test_bundled_adb_is_the_wheels_binary_not_the_env_override() -> None:
    # conftest points ADBUTILS_ADB_PATH at /bin/false; we must not follow it.
    assert os.environ["ADBUTILS_ADB_PATH"] == "/bin/false"
    path = bundled_adb_path()
    assert path.name == "adb" and "adbutils" in path.parts
    out = subprocess.run([str(path), "version"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and "Android Debug Bridge" in out.stdout


def test_server_answers_on_a_private_port_with_a_private_home(
    server: PrivateAdbServer, tmp_path: Path
) -> None:
    assert server.port != 5037 and not 5554 <= server.port <= 5585
    assert server.alive()
    assert server.version() == 41
    assert server.devices() == []
    # adb wrote its key under our HOME, not the user's.
    assert (tmp_path / "adbhome" / ".android" / "adbkey").is_file()
    assert server.pid is not None
    environ = Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0")
    env = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
    assert env["HOME"] == str(tmp_path / "adbhome")
    for key in ("ADB_MDNS", "ADB_MDNS_AUTO_CONNECT", "ADB_LIBUSB", "ADB_USB", "ADB_EMU"):
        assert env[key] == "0", key
    assert "ANDROID_ADB_SERVER_PORT" not in env


def test_adbs_own_ports_are_refused(tmp_path: Path) -> None:
    for port in (5037, 5555, 5585):
        with pytest.raises(ValueError):
            PrivateAdbServer(tmp_path, port=port)


def test_connect_failure_raises_with_adbs_message(server: PrivateAdbServer) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    with pytest.raises(AdbServerError, match="127.0.0.1"):
        server.connect(f"127.0.0.1:{closed_port}")
    server.disconnect(f"127.0.0.1:{closed_port}")  # unknown device: not an error
    with pytest.raises(AdbServerError):
        host_request(server.host, server.port, "host:no-such-request")


def test_stop_ends_the_process_and_frees_the_port(server: PrivateAdbServer) -> None:
    pid = server.pid
    assert pid is not None
    server.stop()
    assert not server.alive()
    assert _wait_gone(pid)
    assert not _port_open(server.port)
    server.stop()  # idempotent
    with pytest.raises(OSError):
        server.version()


def test_kill_is_a_crash_and_restart_brings_it_back(server: PrivateAdbServer) -> None:
    pid = server.pid
    assert pid is not None
    server.kill()
    assert not server.alive()
    assert _wait_gone(pid)
    with pytest.raises(OSError):
        server.version()
    server.restart()
    assert server.alive() and server.pid != pid
    assert server.version() == 41


def test_start_reports_a_server_that_cannot_start(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        srv = PrivateAdbServer(tmp_path, port=busy)
        with pytest.raises(AdbServerError):
            srv.start(timeout=5)
        assert not srv.alive()


_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from app.devices.adbserver import PrivateAdbServer
    server = PrivateAdbServer(Path(sys.argv[1]))
    server.start()
    print(server.pid, flush=True)
    if sys.argv[2] == "hang":
        time.sleep(60)
    elif sys.argv[2] == "drop":
        import gc
        del server
        gc.collect()  # the owner object is gone; the process must still be reaped at exit
    """
)


def _run_owner(tmp_path: Path, mode: str) -> tuple[subprocess.Popen[str], int]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    owner = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path / "home"), mode],
        stdout=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )
    assert owner.stdout is not None
    line = owner.stdout.readline()
    owner.stdout.close()
    assert line.strip().isdigit(), line
    return owner, int(line)


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux-only")
def test_server_dies_when_its_owner_is_killed(tmp_path: Path) -> None:
    owner, adb_pid = _run_owner(tmp_path, "hang")
    assert _pid_alive(adb_pid)
    owner.send_signal(signal.SIGKILL)
    owner.wait(10)
    assert _wait_gone(adb_pid), "adb server outlived its SIGKILLed owner"


@pytest.mark.parametrize("mode", ["exit", "drop"])
def test_server_is_stopped_when_its_owner_exits_without_stop(tmp_path: Path, mode: str) -> None:
    owner, adb_pid = _run_owner(tmp_path, mode)
    assert owner.wait(20) == 0
    assert _wait_gone(adb_pid), "adb server outlived its owner's normal exit"


def test_ports_are_picked_outside_the_ephemeral_range_and_adbs_own() -> None:
    low_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {pick_free_port() for _ in range(50)}
    assert all(port < low_ephemeral for port in ports)
    assert not ports & RESERVED_PORTS
    assert len(ports) > 40  # spread out, so parallel labs rarely meet
