"""AdbProvider commands against simulated phones behind a real adb server.

One small lab serves the whole module (nothing here unplugs a phone); the
tracking, unplug and server-crash behaviour is in test_adb_provider_tracking.py.
"""

from __future__ import annotations

import os
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.devices.adb import AdbProvider
from app.devices.adb_client import SafeAdbClient
from app.devices.adb_shell import ShellRunner
from app.devices.base import (
    CommandCancelledError,
    CommandTimeoutError,
    DeviceError,
    DeviceGoneError,
)
from app.devices.sim import SimLab

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimLab]:
    with SimLab(2, tmp_path_factory.mktemp("lab"), seed=7) as running:
        yield running


@pytest.fixture(scope="module")
def provider(lab: SimLab) -> AdbProvider:
    return AdbProvider(lab.adb_host, lab.adb_port)


@pytest.fixture
def serial(lab: SimLab) -> str:
    return lab.serials[0]


def make_apk(path: Path, package: str) -> Path:
    with zipfile.ZipFile(path, "w") as apk:
        apk.writestr("taskdesk-package.txt", package + "\n")
        apk.writestr("classes.dex", os.urandom(256))
    assert path.read_bytes().startswith(b"PK")
    return path


def test_server_info_reports_the_running_server(lab: SimLab, provider: AdbProvider) -> None:
    info = provider.server_info()
    assert info.alive and info.version == 41
    assert (info.host, info.port) == (lab.adb_host, lab.adb_port)


def test_devices_without_tracking_lists_phones_with_metadata(
        lab: SimLab, provider: AdbProvider) -> None:
    by_serial = {d.serial: d for d in provider.devices()}
    assert set(by_serial) == set(lab.serials)
    for serial, info in by_serial.items():
        profile = lab.phone(serial).profile
        assert (info.model, info.manufacturer, info.sdk) == (
            profile.model, profile.manufacturer, profile.sdk)
        assert info.transport == "sim"


def test_shell_returns_output_of_both_streams_and_the_exit_code(
        provider: AdbProvider, serial: str) -> None:
    result = provider.shell(serial, "echo hello; echo oops >&2; exit 3", timeout=10)
    assert result.output == "hello\noops\n"
    assert result.exit_code == 3
    assert provider.shell(serial, "true", timeout=10).exit_code == 0


def test_shell_quotes_each_argument_of_a_sequence(provider: AdbProvider, serial: str) -> None:
    result = provider.shell(serial, ["echo", "two words", "$HOME", "a;b"], timeout=10)
    assert result.output == "two words $HOME a;b\n"


def test_cancel_interrupts_a_long_command_quickly_and_the_phone_still_works(
        lab: SimLab, provider: AdbProvider, serial: str) -> None:
    fs = lab.phone(serial).state.fs
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(CommandCancelledError):
        provider.shell(serial, "sleep 1; touch /data/local/tmp/ran-on", timeout=60,
                       cancel=cancel)
    assert time.monotonic() - started < 1.0
    # The device command itself was stopped: the rest of the line never ran.
    time.sleep(1.2)
    assert not fs.exists("/data/local/tmp/ran-on")
    assert provider.shell(serial, "echo alive", timeout=10).output == "alive\n"


def test_sleep_60_cancelled_returns_in_under_a_second(provider: AdbProvider, serial: str) -> None:
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(CommandCancelledError):
        provider.shell(serial, "sleep 60", timeout=120, cancel=cancel)
    assert time.monotonic() - started < 1.0


def test_timeout_interrupts_the_command(provider: AdbProvider, serial: str) -> None:
    started = time.monotonic()
    with pytest.raises(CommandTimeoutError):
        provider.shell(serial, "sleep 60", timeout=0.5)
    assert 0.45 < time.monotonic() - started < 1.0
    assert provider.shell(serial, "echo ok", timeout=10).exit_code == 0


def test_large_output_is_capped_head_and_tail_with_an_omitted_marker(
        provider: AdbProvider, serial: str, tmp_path: Path) -> None:
    lines = b"".join(b"line %06d\n" % i for i in range(20_000))  # 240,000 bytes
    source = tmp_path / "lines.txt"
    source.write_bytes(lines)
    provider.push(serial, source, "/data/local/tmp/lines.txt")
    result = provider.shell(serial, "cat /data/local/tmp/lines.txt", timeout=20,
                            output_limit=1000)
    assert result.omitted_bytes == len(lines) - 1000
    assert result.output.startswith("line 000000\n")
    assert result.output.endswith("line 019999\n")
    assert f"[... {len(lines) - 1000} bytes omitted ...]" in result.output
    assert result.exit_code == 0


def test_push_pull_round_trip_is_byte_exact(
        provider: AdbProvider, serial: str, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    local = tmp_path / "blob.bin"
    local.write_bytes(data)
    assert provider.push(serial, local, "/data/local/tmp/blob.bin") == len(data)
    back = tmp_path / "back.bin"
    assert provider.pull(serial, "/data/local/tmp/blob.bin", back) == len(data)
    assert back.read_bytes() == data
    assert not (tmp_path / "back.bin.part").exists()


def test_push_into_a_directory_keeps_the_file_name(
        provider: AdbProvider, serial: str, tmp_path: Path) -> None:
    local = tmp_path / "named.txt"
    local.write_text("x")
    provider.push(serial, local, "/data/local/tmp/")
    assert provider.shell(serial, "cat /data/local/tmp/named.txt", timeout=10).output == "x"


def test_pull_of_a_missing_file_is_a_device_error_not_a_lost_device(
        provider: AdbProvider, serial: str, tmp_path: Path) -> None:
    target = tmp_path / "never.bin"
    with pytest.raises(DeviceError, match="does not exist") as caught:
        provider.pull(serial, "/data/local/tmp/no-such-file", target)
    assert not isinstance(caught.value, DeviceGoneError)
    assert not target.exists() and not (tmp_path / "never.bin.part").exists()


def test_cancelled_push_stops_and_removes_the_partial_copy(
        lab: SimLab, provider: AdbProvider, serial: str, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(8_000_000))
    cancel = threading.Event()
    threading.Timer(0.05, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(CommandCancelledError):
        provider.push(serial, big, "/data/local/tmp/big.bin", cancel=cancel)
    assert time.monotonic() - started < 1.0
    assert not lab.phone(serial).state.fs.exists("/data/local/tmp/big.bin")


def test_install_lists_the_package_and_uninstall_removes_it(
        lab: SimLab, provider: AdbProvider, serial: str, tmp_path: Path) -> None:
    apk = make_apk(tmp_path / "demo.apk", "org.taskdesk.demo")
    assert "Success" in provider.install(serial, apk)
    packages = provider.shell(serial, "pm list packages", timeout=10).output
    assert "package:org.taskdesk.demo" in packages.splitlines()
    # The temporary copy is gone.
    leftovers = provider.shell(serial, "ls /data/local/tmp", timeout=10).output
    assert "taskdesk-" not in leftovers
    assert "Success" in provider.uninstall(serial, "org.taskdesk.demo")
    packages = provider.shell(serial, "pm list packages", timeout=10).output
    assert "package:org.taskdesk.demo" not in packages.splitlines()


def test_install_failure_carries_the_package_manager_reason(
        provider: AdbProvider, serial: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.apk"
    bad.write_bytes(b"this is not a zip")
    with pytest.raises(DeviceError, match=r"Failure \[INSTALL_FAILED_INVALID_APK\]"):
        provider.install(serial, bad)
    with pytest.raises(DeviceError, match="DELETE_FAILED_INTERNAL_ERROR"):
        provider.uninstall(serial, "org.taskdesk.never.installed")
    with pytest.raises(DeviceError, match="invalid package name"):
        provider.uninstall(serial, "x; reboot")


def test_screenshot_is_a_png(provider: AdbProvider, serial: str) -> None:
    png = provider.screenshot(serial)
    assert png.startswith(PNG_SIGNATURE)
    assert png.endswith(b"IEND\xaeB`\x82")  # intact to the last byte


def test_battery_is_parsed_from_dumpsys(
        lab: SimLab, provider: AdbProvider, serial: str) -> None:
    lab.phone(serial).set_battery(level=42, temperature_c=33.5, charging=False)
    battery = provider.battery(serial)
    assert battery.level in (41, 42)  # draining at 1 %/min off the charger
    assert battery.temperature_c == pytest.approx(33.5)
    assert battery.charging is False


def test_interactive_shell_sends_and_receives(provider: AdbProvider, serial: str) -> None:
    session = provider.open_shell(serial)
    try:
        session.send(b"echo interactive-ok\n")
        received = b""
        deadline = time.monotonic() + 5
        while b"interactive-ok\r\n" not in received and time.monotonic() < deadline:
            received += session.recv()
        assert b"interactive-ok\r\n" in received
    finally:
        session.close()
    assert session.recv() == b""


def test_close_unblocks_a_recv_waiting_in_another_thread(
        provider: AdbProvider, serial: str) -> None:
    session = provider.open_shell(serial)
    session.recv()  # the prompt
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(session.recv()))
    reader.start()
    time.sleep(0.1)
    session.close()
    reader.join(2)
    assert not reader.is_alive() and got == [b""]


def test_unknown_serial_is_a_gone_device(provider: AdbProvider) -> None:
    with pytest.raises(DeviceGoneError):
        provider.shell("127.0.0.1:1", "echo hi", timeout=5)


def test_parallel_commands_on_both_phones(lab: SimLab, provider: AdbProvider) -> None:
    results: dict[str, str] = {}

    def run(serial: str, n: int) -> None:
        results[f"{serial}/{n}"] = provider.shell(serial, f"echo {n}", timeout=10).output

    threads = [threading.Thread(target=run, args=(s, n)) for s in lab.serials for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == {f"{s}/{n}": f"{n}\n" for s in lab.serials for n in range(8)}


# --- devices without shell v2: the exit-code marker and exec-out ---------------------
# Every simulated phone speaks shell v2, so the fallback is driven through the runner
# the provider uses, with v2 switched off.


@pytest.fixture(scope="module")
def v1_runner(lab: SimLab) -> ShellRunner:
    return ShellRunner(SafeAdbClient(lab.adb_host, lab.adb_port))


def test_v1_shell_reads_the_exit_code_from_the_marker_and_hides_it(
        v1_runner: ShellRunner, serial: str) -> None:
    result = v1_runner.run(serial, "echo one; echo two >&2; false", v2=False, timeout=10)
    assert result.output == "one\ntwo\n"
    assert result.exit_code == 1
    # Output without a final newline keeps its last line intact.
    result = v1_runner.run(serial, ["echo", "-n", "no newline"], v2=False, timeout=10)
    assert (result.output, result.exit_code) == ("no newline", 0)
    # A trailing comment does not swallow the marker.
    result = v1_runner.run(serial, "echo x # comment", v2=False, timeout=10)
    assert (result.output, result.exit_code) == ("x\n", 0)


def test_v1_shell_is_cancellable_too(v1_runner: ShellRunner, serial: str) -> None:
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(CommandCancelledError):
        v1_runner.run(serial, "sleep 60", v2=False, timeout=60, cancel=cancel)
    assert time.monotonic() - started < 1.0


def test_exec_out_screenshot_is_byte_identical_to_the_v2_one(
        provider: AdbProvider, v1_runner: ShellRunner, serial: str) -> None:
    raw = v1_runner.read_stdout(serial, "screencap -p", v2=False, timeout=10)
    assert raw.startswith(PNG_SIGNATURE)
    assert raw == provider.screenshot(serial)


def test_closing_a_connection_frees_its_socket_at_once(lab: SimLab) -> None:
    """Our connections close without adbutils' 10 ms sleep (it cost every command
    that much), and still really close: the socket is released and the connection
    reports itself closed, so a second close is harmless."""
    client = SafeAdbClient(lab.adb_host, lab.adb_port)
    conn = client.open_service(lab.serials[0], "shell,v2,raw:echo hi")
    sock = conn.conn
    conn.close()
    assert conn.closed and sock.fileno() == -1
    conn.close()
