"""The sim must never be the bottleneck: twelve phones flat out leave its loop idle time.

The load comes from a separate process (so it does not share our GIL) that
runs short shell commands on all twelve phones in parallel through the real
adb server; we measure the CPU time of the sim's loop thread from /proc.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import adbutils
import pytest

from app.devices.sim import SimLab

pytest_plugins = ("tests.devices.simfixtures",)

_LOAD = textwrap.dedent(
    """
    import socket, sys, threading, time
    port, serials, seconds = int(sys.argv[1]), sys.argv[2].split(","), float(sys.argv[3])
    counts = []

    def exact(sock, size):
        data = b""
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def worker(serial):
        done, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                for request in (f"host:transport:{serial}", "shell:getprop ro.product.model"):
                    raw = request.encode()
                    sock.sendall(b"%04x" % len(raw) + raw)
                    assert exact(sock, 4) == b"OKAY"
                while sock.recv(65536):
                    pass
            done += 1
        counts.append(done)

    threads = [threading.Thread(target=worker, args=(s,)) for s in serials]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(sum(counts))
    """
)


def _thread_cpu_seconds(native_id: int) -> float:
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(sys.platform != "linux", reason="reads thread CPU time from /proc")
def test_twelve_phones_flat_out_do_not_saturate_the_sim(
    sim_lab: SimLab, capsys: pytest.CaptureFixture[str]
) -> None:
    native_id = sim_lab._loop.native_id
    assert native_id is not None
    seconds = 1.5
    cpu_before, started = _thread_cpu_seconds(native_id), time.monotonic()
    load = subprocess.run(
        [sys.executable, "-c", _LOAD, str(sim_lab.adb_port), ",".join(sim_lab.serials),
         str(seconds)],
        capture_output=True, text=True, timeout=60, check=True,
    )
    wall = time.monotonic() - started
    cpu = _thread_cpu_seconds(native_id) - cpu_before
    commands = int(load.stdout)
    with capsys.disabled():
        print(f"\nsim: {commands / seconds:.0f} commands/s over 12 phones; sim loop CPU "
              f"{cpu:.2f}s in {wall:.2f}s ({cpu / wall:.0%}), "
              f"{cpu / commands * 1000:.2f} ms/command")
    assert commands > 100
    assert cpu / wall < 0.8, "the sim loop is saturated: it would throttle the lab"
    assert cpu / commands < 0.002


@pytest.mark.slow
def test_adbutils_shell_throughput_on_one_phone(
    sim_lab_factory: Callable[..., SimLab], capsys: pytest.CaptureFixture[str]
) -> None:
    lab = sim_lab_factory(1)
    device = adbutils.AdbClient(host=lab.adb_host, port=lab.adb_port).device(lab.serials[0])
    done, started = 0, time.monotonic()
    while time.monotonic() - started < 3.0:
        assert device.shell("echo x") == "x"
        done += 1
    rate = done / (time.monotonic() - started)
    with capsys.disabled():
        # adbutils sleeps 10 ms in every AdbConnection.close(), and d.shell() opens two
        # connections (server_version + the transport): ~45/s is the client's ceiling.
        print(f"\nadbutils d.shell on one sim phone: {rate:.1f} commands/s")
    assert rate > 20
