"""The lab from an operator's terminal: ``python -m app.devices.sim`` and the adb CLI.

Protects the demo instructions: the entry point prints a working adb port and
the serials and shuts down cleanly on Ctrl-C, and the real ``adb`` command
(shell with exit status, push/pull, install, reboot) works against the phones.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from app.devices.adbserver import bundled_adb_path, host_request
from app.devices.sim import SimLab

pytest_plugins = ("tests.devices.simfixtures",)

REPO = Path(__file__).resolve().parents[2]


def test_module_entry_runs_a_lab_until_interrupted(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.devices.sim", "--phones", "3", "--workdir",
         str(tmp_path / "lab")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while not any("running" in line for line in lines) and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
    try:
        output = "".join(lines)
        port = int(re.search(r"adb server: 127\.0\.0\.1:(\d+)", output).group(1))  # type: ignore[union-attr]
        serials = re.findall(r"^\s+(127\.0\.0\.1:\d+)\s+SIM000\d", output, re.M)
        assert len(serials) == 3
        listing = host_request("127.0.0.1", port, "host:devices")
        assert sorted(line.split("\t")[0] for line in listing.splitlines()) == sorted(serials)
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, output + rest
    assert "stopped" in rest
    with pytest.raises(OSError):
        host_request("127.0.0.1", port, "host:version", timeout=1)


def test_the_adb_command_line_works_against_the_lab(
    sim_lab_factory: Callable[..., SimLab], tmp_path: Path
) -> None:
    lab = sim_lab_factory(1, reboot_seconds=0.3)
    serial = lab.serials[0]
    env = dict(os.environ, HOME=str(lab.server.home))

    def adb(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [str(bundled_adb_path()), "-P", str(lab.adb_port), "-s", serial, *args],
            input=stdin, capture_output=True, env=env, timeout=30,
        )

    assert b"model:Pixel_7" in adb("devices", "-l").stdout
    assert adb("shell", "exit 7").returncode == 7  # shell v2 carries the status
    assert adb("shell", "getprop ro.serialno").stdout == b"SIM0001\n"
    assert adb("shell", stdin=b"echo typed\nexit 3\n").returncode == 3
    blob = os.urandom(200_000)
    (tmp_path / "blob").write_bytes(blob)
    assert adb("push", str(tmp_path / "blob"), "/sdcard/blob").returncode == 0
    assert adb("pull", "/sdcard/blob", str(tmp_path / "back")).returncode == 0
    assert (tmp_path / "back").read_bytes() == blob
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("taskdesk-package.txt", "org.example.cli")
    (tmp_path / "cli.apk").write_bytes(buffer.getvalue())
    installed = adb("install", str(tmp_path / "cli.apk"))
    assert installed.returncode == 0 and b"Success" in installed.stdout
    assert "org.example.cli" in lab.phone(serial).installed_packages
    assert adb("exec-out", "screencap -p").stdout.startswith(b"\x89PNG")
    before = lab.phone(serial).reboots
    assert adb("reboot").returncode == 0  # the reboot: service
    deadline = time.monotonic() + 10
    while lab.phone(serial).reboots == before and time.monotonic() < deadline:
        time.sleep(0.05)
    lab.wait_for_states({serial: "device"})
    assert adb("shell", "echo up").stdout == b"up\n"
