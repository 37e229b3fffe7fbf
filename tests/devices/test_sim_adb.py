"""The simulated phones through the real stack: unmodified adbutils -> real adb server -> sim.

These protect what the engine's runners and the console rely on: the commands
and services answer like a phone (output formats, exit codes, files, PNGs,
packages) and long-running streams stop when the client closes them.
"""

from __future__ import annotations

import io
import os
import re
import socket
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import adbutils
import pytest
from PIL import Image

from app.devices.sim import SimLab

pytest_plugins = ("tests.devices.simfixtures",)


def _apk(package: str | None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("AndroidManifest.xml", b"\x03\x00\x08\x00")
        if package is not None:
            archive.writestr("taskdesk-package.txt", package)
    return buffer.getvalue()


def test_adb_lists_every_phone_as_device_with_its_model(
    sim_lab: SimLab, adb_client: adbutils.AdbClient
) -> None:
    infos = {info.serial: info for info in adb_client.list(extended=True)}
    assert set(infos) == set(sim_lab.serials)
    assert len(infos) == 12
    assert {info.state for info in infos.values()} == {"device"}
    first = sim_lab.phone(sim_lab.serials[0])
    assert infos[first.address].tags["model"] == first.profile.model.replace(" ", "_")
    # The serials are loopback addresses outside adb's own ports.
    for serial in infos:
        host, port = serial.rsplit(":", 1)
        assert host == "127.0.0.1" and not 5554 <= int(port) <= 5585


def test_shell_and_getprop_answer_like_the_profile(
    sim_lab: SimLab, adb_client: adbutils.AdbClient
) -> None:
    phone = sim_lab.phones[2]
    device = adb_client.device(phone.address)
    assert device.shell("echo hello world") == "hello world"
    assert device.getprop("ro.product.model") == phone.profile.model
    assert device.getprop("ro.product.manufacturer") == phone.profile.manufacturer
    assert device.getprop("ro.build.version.release") == phone.profile.android_version
    assert device.getprop("ro.build.version.sdk") == str(phone.profile.sdk)
    assert device.getprop("ro.product.cpu.abi") == phone.profile.abi
    assert device.getprop("ro.serialno") == phone.profile.serial_no
    assert device.getprop("ro.taskdesk.sim") == "1"
    assert device.prop.model == phone.profile.model
    listing = device.shell("getprop")
    assert f"[ro.serialno]: [{phone.profile.serial_no}]" in listing.splitlines()
    assert all(re.fullmatch(r"\[[^\]]+\]: \[.*\]", line) for line in listing.splitlines())


def test_exit_codes_are_observable_over_shell_v2_and_v1(
    sim_lab: SimLab, adb_client: adbutils.AdbClient
) -> None:
    device = adb_client.device(sim_lab.serials[0])
    assert "shell_v2" in device.get_features().split(",")
    assert device.shell2("true", v2=True).returncode == 0
    assert device.shell2("false", v2=True).returncode == 1
    assert device.shell2("sh -c 'exit 42'", v2=True).returncode == 42
    missing = device.shell2("frobnicate --now", v2=True)
    assert missing.returncode == 127
    assert missing.stderr == "/system/bin/sh: frobnicate: inaccessible or not found\n"
    assert missing.stdout == ""
    # v1 has no exit packet: the engine appends "; echo MARKER$?" and parses it.
    assert device.shell2("false").returncode == 1  # adbutils' own v1 idiom
    assert device.shell("ls /nope; echo __TD_EXIT__$?").endswith("__TD_EXIT__1")
    assert device.shell("true && echo yes || echo no") == "yes"
    assert device.shell("false && echo yes || echo no") == "no"


def test_push_and_pull_round_trip_one_mebibyte(
    sim_lab: SimLab, adb_client: adbutils.AdbClient, tmp_path: Path
) -> None:
    device = adb_client.device(sim_lab.serials[1])
    payload = os.urandom(1024 * 1024)
    source = tmp_path / "blob.bin"
    source.write_bytes(payload)
    assert device.sync.push(source, "/sdcard/Download/blob.bin") == len(payload)
    info = device.sync.stat("/sdcard/Download/blob.bin")
    assert info.size == len(payload)
    assert device.sync.read_bytes("/sdcard/Download/blob.bin") == payload
    target = tmp_path / "back.bin"
    assert device.sync.pull("/sdcard/Download/blob.bin", target) == len(payload)
    assert target.read_bytes() == payload
    names = [entry.path for entry in device.sync.list("/sdcard/Download")]
    assert "blob.bin" in names
    assert device.shell("cat /sdcard/Download/nope.txt; echo $?").endswith("1")
    with pytest.raises(adbutils.AdbError):
        device.sync.read_bytes("/sdcard/Download/nope.txt")


def test_screencap_gives_a_valid_png_that_differs_per_phone(
    sim_lab: SimLab, adb_client: adbutils.AdbClient
) -> None:
    first, second = (adb_client.device(s) for s in sim_lab.serials[:2])
    raw = first.shell("screencap -p", encoding=None)
    assert raw.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(raw))
    image.load()
    assert image.size == (360, 640)
    assert first.screenshot().size == (360, 640)  # adbutils' own decoder path
    assert second.shell("screencap -p", encoding=None) != raw
    assert first.shell("wm size") == "Physical size: 360x640"


def test_pm_install_uninstall_and_list(
    sim_lab: SimLab, adb_client: adbutils.AdbClient, tmp_path: Path
) -> None:
    phone = sim_lab.phones[3]
    device = adb_client.device(phone.address)
    before = device.list_packages()
    assert "com.android.settings" in before  # system app
    assert device.shell("pm list packages -3") == "package:com.example.capture"  # lab image app
    device.sync.push(_apk("com.example.scanner"), "/data/local/tmp/scanner.apk")
    assert device.shell("pm install -r /data/local/tmp/scanner.apk") == "Success"
    assert "com.example.scanner" in device.list_packages()
    assert "com.example.scanner" in phone.installed_packages
    assert device.shell("pm list packages -3 scanner") == "package:com.example.scanner"
    # adbutils' own install path (push to /data/local/tmp + pm install)
    apk = tmp_path / "named.apk"
    apk.write_bytes(_apk(None))
    device.install(apk, nolaunch=True, silent=True)
    assert "unknown" in device.list_packages()  # no apkutils: adbutils pushes unknown.apk
    bad = device.shell2("pm install /data/local/tmp/missing.apk", v2=True)
    assert bad.returncode == 1 and "INSTALL_FAILED_INVALID_APK" in bad.output
    device.sync.push(b"not a zip", "/data/local/tmp/bad.apk")
    assert "INSTALL_FAILED_INVALID_APK" in device.shell("pm install /data/local/tmp/bad.apk")
    assert device.shell("pm uninstall com.example.scanner") == "Success"
    assert device.shell("pm uninstall unknown") == "Success"
    assert device.list_packages() == before
    assert "Failure" in device.shell("pm uninstall com.example.scanner")


def test_apps_start_and_stop(sim_lab: SimLab, adb_client: adbutils.AdbClient) -> None:
    phone = sim_lab.phones[4]
    device = adb_client.device(phone.address)
    device.sync.push(_apk("com.example.app"), "/data/local/tmp/app.apk")
    assert device.shell("pm install /data/local/tmp/app.apk") == "Success"
    started = device.shell2("am start -n com.example.app/.MainActivity", v2=True)
    assert started.returncode == 0 and "cmp=com.example.app/.MainActivity" in started.output
    assert "com.example.app" in phone.running_packages
    assert device.app_current().package == "com.example.app"
    assert device.shell2("pidof com.example.app", v2=True).returncode == 0
    device.app_stop("com.example.app")
    assert "com.example.app" not in phone.running_packages
    assert "Events injected: 1" in device.shell("monkey -p com.example.app -c x 1")
    assert device.shell2("monkey -p com.nope 1", v2=True).returncode != 0
    assert device.shell2("am start -n com.nope/.Main", v2=True).returncode != 0
    assert device.shell2("input tap 10 20", v2=True).returncode == 0
    assert device.shell2("input text hello", v2=True).returncode == 0
    assert device.shell2("input tap x y", v2=True).returncode == 1
    device.shell("pm uninstall com.example.app")


def test_battery_report_is_in_android_format(
    sim_lab: SimLab, adb_client: adbutils.AdbClient
) -> None:
    phone = sim_lab.phones[5]
    phone.set_battery(level=17, temperature_c=41.5, charging=False)
    battery = adb_client.device(phone.address).battery()
    assert battery.level == 17
    assert battery.temperature == pytest.approx(41.5)
    assert battery.usb_powered is False and battery.ac_powered is False
    assert battery.status == 3  # discharging
    phone.set_battery(level=60, temperature_c=30.0, charging=True)
    battery = adb_client.device(phone.address).battery()
    assert battery.usb_powered is True and battery.status == 2


def test_closing_a_sleep_stream_returns_promptly_and_the_phone_keeps_working(
    sim_lab: SimLab, adb_client: adbutils.AdbClient
) -> None:
    device = adb_client.device(sim_lab.serials[6])
    stream = device.shell("sleep 60; echo finished", stream=True)
    stream.conn.settimeout(0.3)
    with pytest.raises((socket.timeout, adbutils.AdbTimeout)):
        stream.read(1)  # nothing comes: the phone is sleeping
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 1.0
    assert device.shell("echo still here") == "still here"
    # the sleep's task was cancelled on the phone: nothing lingers
    assert device.shell2("echo $?", v2=True).returncode == 0


def test_logcat_streams_until_the_reader_closes(
    sim_lab: SimLab, adb_client: adbutils.AdbClient
) -> None:
    device = adb_client.device(sim_lab.serials[7])
    stream = device.shell("logcat -v time", stream=True)
    stream.conn.settimeout(5)
    seen = b""
    deadline = time.monotonic() + 5
    while b"SimHeartbeat" not in seen and time.monotonic() < deadline:
        seen += stream.conn.recv(65536)
    stream.close()
    assert b"SimHeartbeat" in seen
    assert re.search(rb"\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [VDIWEF]/", seen)
    assert "System now ready" in device.shell("logcat -d")


def test_unknown_commands_files_and_text_tools(
    sim_lab: SimLab, adb_client: adbutils.AdbClient
) -> None:
    device = adb_client.device(sim_lab.serials[8])
    assert device.shell("echo one > /sdcard/t.txt; echo two >> /sdcard/t.txt; cat /sdcard/t.txt") \
        == "one\ntwo"
    assert device.shell("cat /sdcard/t.txt | grep -c o") == "2"
    assert device.shell("rm /sdcard/t.txt; ls /sdcard/t.txt 2>&1") \
        == "ls: /sdcard/t.txt: No such file or directory"
    assert device.shell("id").startswith("uid=2000(shell)")
    assert device.shell("which su; echo $?") == "1"  # not rooted
    assert device.shell2("su -c id", v2=True).returncode == 127


def test_failure_rate_is_deterministic_per_seed(sim_lab_factory: Callable[..., SimLab]) -> None:
    def outcomes(lab: SimLab) -> list[int]:
        client = adbutils.AdbClient(host=lab.adb_host, port=lab.adb_port)
        device = client.device(lab.serials[0])
        return [device.shell2("input tap 1 1", v2=True).returncode for _ in range(12)]

    first = outcomes(sim_lab_factory(1, failure_rate=0.5, seed=7))
    second = outcomes(sim_lab_factory(1, failure_rate=0.5, seed=7))
    assert first == second
    assert 0 in first and 1 in first


def test_latency_slows_every_command(sim_lab: SimLab, adb_client: adbutils.AdbClient) -> None:
    phone = sim_lab.phones[9]
    phone.set_latency(0.3)
    device = adb_client.device(phone.address)
    started = time.monotonic()
    device.shell("true")
    assert time.monotonic() - started >= 0.3
    before = phone.commands_run
    device.shell("true")
    assert phone.commands_run == before + 1

