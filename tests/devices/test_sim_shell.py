"""The simulated phone's shell and commands, run directly (no adb in between).

Protects the semantics runners depend on: ``$?`` after each command (the v1
exit-code idiom), ``&&``/``||``/``;``/``exit``, quoting, redirections and pipes,
Android's messages and exit codes, and the formats of getprop, dumpsys battery,
pm and screencap.
"""

from __future__ import annotations

import asyncio
import io
import zipfile

import pytest

from app.devices.sim import make_profile
from app.devices.sim.android_pm import package_name_of
from app.devices.sim.services import open_service
from app.devices.sim.shell import BufferSink, BytesSource, ShellRuntime
from app.devices.sim.shellparse import ShellSyntaxError, parse
from app.devices.sim.state import PhoneState


@pytest.fixture
def state() -> PhoneState:
    return PhoneState(make_profile(5), seed=1)


def run(state: PhoneState, command: str, stdin: bytes = b"") -> tuple[int, str, str]:
    out, err = BufferSink(), BufferSink()
    runtime = ShellRuntime(state, out, err, BytesSource(stdin))
    status = asyncio.run(runtime.run(command))
    return status, out.data.decode(), err.data.decode()


def test_status_expansion_supports_the_v1_exit_code_idiom(state: PhoneState) -> None:
    assert run(state, "false; echo __TD_EXIT__$?") == (0, "__TD_EXIT__1\n", "")
    assert run(state, "nope; echo $?")[1] == "127\n"
    assert run(state, 'sh -c "exit 9"; echo "code=$?"')[1] == "code=9\n"
    assert run(state, "echo ${?}x")[1] == "0x\n"


def test_and_or_lists_exit_and_sequences(state: PhoneState) -> None:
    assert run(state, "true && echo a || echo b")[1] == "a\n"
    assert run(state, "false && echo a || echo b")[1] == "b\n"
    assert run(state, "echo 1; exit 4; echo 2") == (4, "1\n", "")
    assert run(state, "exit")[0] == 0
    assert run(state, "echo a & echo b")[1] == "a\nb\n"  # no jobs: in sequence
    assert run(state, "")[0] == 0


def test_quoting_and_escapes(state: PhoneState) -> None:
    assert run(state, "echo 'a  b' \"c $? d\" e\\ f")[1] == "a  b c 0 d e f\n"
    assert run(state, "echo '$?' \"\\$HOME\" $HOME")[1] == "$? $HOME /\n"
    assert run(state, "echo -n no-newline")[1] == "no-newline"
    assert run(state, "echo a#b # comment")[1] == "a#b\n"


def test_syntax_errors_are_reported_not_raised(state: PhoneState) -> None:
    status, out, err = run(state, "echo 'unterminated")
    assert status == 2 and out == "" and "syntax error" in err
    with pytest.raises(ShellSyntaxError):
        parse("echo $(id)")
    assert run(state, "&& echo x")[0] == 2


def test_unknown_command_message_and_status(state: PhoneState) -> None:
    assert run(state, "frob a b") == (
        127, "", "/system/bin/sh: frob: inaccessible or not found\n"
    )
    assert run(state, "/system/bin/echo full path")[1] == "full path\n"


def test_redirections_and_pipes(state: PhoneState) -> None:
    run(state, "echo one > /sdcard/f; echo two >> /sdcard/f")
    assert state.fs.read("/sdcard/f") == b"one\ntwo\n"
    assert run(state, "cat < /sdcard/f | grep -n two")[1] == "2:two\n"
    assert run(state, "cat /nope 2>/dev/null; echo $?")[1] == "1\n"
    assert run(state, "cat /nope 2>&1")[1] == "cat: /nope: No such file or directory\n"
    assert run(state, "cat /nope > /sdcard/out 2>&1; cat /sdcard/out")[1] == \
        "cat: /nope: No such file or directory\n"
    assert run(state, "pm list packages | head -n 2 | wc -l")[1] == "2\n"
    assert run(state, "cat", stdin=b"from stdin")[1] == "from stdin"


def test_files_and_directories(state: PhoneState) -> None:
    assert run(state, "mkdir -p /sdcard/a/b && touch /sdcard/a/b/c && ls /sdcard/a/b")[1] == "c\n"
    assert run(state, "rm /sdcard/a")[0] == 1  # a directory needs -r
    assert run(state, "rm -r /sdcard/a; ls /sdcard/a")[0] == 1
    assert run(state, "rm -f /sdcard/none")[0] == 0
    assert run(state, "cd /sdcard; pwd; echo hi > x; cat /sdcard/x")[1] == "/sdcard\nhi\n"


def test_getprop_lists_android_format_and_single_keys(state: PhoneState) -> None:
    status, out, _ = run(state, "getprop")
    lines = out.splitlines()
    assert status == 0 and lines == sorted(lines)
    assert "[ro.product.model]: [Moto G Power]" in lines
    assert "[ro.taskdesk.sim]: [1]" in lines
    assert run(state, "getprop ro.build.version.sdk")[1] == "31\n"
    assert run(state, "getprop no.such.key")[1] == "\n"
    assert run(state, "getprop no.such.key fallback")[1] == "fallback\n"
    assert run(state, "setprop ro.serialno X")[0] == 1
    assert run(state, "setprop debug.x 5; getprop debug.x")[1] == "5\n"


def test_dumpsys_battery_tracks_level_temperature_and_charging(state: PhoneState) -> None:
    state.battery.set(level=23, temperature_c=38.2, charging=False)
    report = run(state, "dumpsys battery")[1]
    fields = dict(line.strip().split(": ", 1) for line in report.splitlines()[1:])
    assert report.startswith("Current Battery Service state:\n")
    assert fields["level"] == "23" and fields["temperature"] == "382"
    assert fields["USB powered"] == "false" and fields["AC powered"] == "false"
    assert fields["status"] == "3"
    assert run(state, "dumpsys battery set level 80; dumpsys battery reset")[0] == 0
    snapshot = state.battery.snapshot()
    assert snapshot.level == 80 and snapshot.charging


def test_battery_drains_off_the_charger_and_recovers_on_it(state: PhoneState) -> None:
    state.battery.set(level=50, charging=False)
    state.battery._since -= 600  # ten minutes pass
    assert state.battery.snapshot().level == 40
    state.battery.set(charging=True)
    state.battery._since -= 300
    assert state.battery.snapshot().level == 50


def test_pm_install_reads_the_package_name_from_the_apk(state: PhoneState) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("taskdesk-package.txt", "com.example.named\n")
    assert package_name_of(buffer.getvalue(), "/x/whatever.apk") == "com.example.named"
    assert package_name_of(b"PK\x03\x04junk", "/x/plain.apk") == "plain"
    assert package_name_of(b"MZ", "/x/virus.apk") is None
    state.fs.write("/data/local/tmp/a.apk", buffer.getvalue())
    assert run(state, "pm install -r -t /data/local/tmp/a.apk") == (0, "Success\n", "")
    assert run(state, "pm path com.example.named")[1] == \
        "package:/data/app/com.example.named-1/base.apk\n"
    assert run(state, "pm list packages named")[1] == "package:com.example.named\n"
    assert run(state, "pm install /data/local/tmp/none.apk") == (
        1, "", "Failure [INSTALL_FAILED_INVALID_APK]\n"
    )
    assert run(state, "pm uninstall com.android.settings")[0] == 1  # system app
    assert run(state, "pm uninstall com.example.named")[1] == "Success\n"


def test_screencap_png_to_stdout_and_to_a_file(state: PhoneState) -> None:
    out = BufferSink()
    asyncio.run(ShellRuntime(state, out, BufferSink()).run("screencap -p"))
    assert bytes(out.data).startswith(b"\x89PNG\r\n\x1a\n")
    assert run(state, "screencap -p /sdcard/s.png")[0] == 0
    assert state.fs.read("/sdcard/s.png") == bytes(out.data)


def test_failure_rate_hits_am_start_input_and_screencap_only(state: PhoneState) -> None:
    state.installed_packages.add("com.example.app")
    state.failure_rate = 1.0
    assert run(state, "am start -n com.example.app/.Main")[0] == 1
    status, _, err = run(state, "input tap 1 2")
    assert status == 1 and "injected failure" in err
    assert run(state, "screencap -p")[0] == 1
    assert run(state, "echo fine")[0] == 0
    state.failure_rate = 0.0
    assert run(state, "am start -n com.example.app/.Main")[0] == 0


def test_am_monkey_and_keyevents_track_the_foreground_app(state: PhoneState) -> None:
    state.installed_packages.add("com.example.app")
    assert run(state, "monkey -p com.example.app -c android.intent.category.LAUNCHER 1")[0] == 0
    assert state.foreground is not None and state.foreground[0] == "com.example.app"
    assert "mCurrentFocus=Window{5f3a2b1 u0 com.example.app/" in run(state, "dumpsys window")[1]
    assert run(state, "input keyevent KEYCODE_HOME")[0] == 0
    assert state.foreground is None
    assert run(state, "am force-stop com.example.app")[0] == 0
    assert "com.example.app" not in state.running_packages
    assert run(state, "monkey -p com.missing 1")[0] == 252


def test_service_names_map_to_services(state: PhoneState) -> None:
    for name in ("shell:", "shell:id", "shell,v2,raw:id", "shell,v2,TERM=xterm,pty:",
                 "exec:screencap -p", "sync:", "reboot:", "root:"):
        assert open_service(state, name) is not None, name
    for name in ("framebuffer:", "tcp:8080", "shellx:id", "jdwp:1"):
        assert open_service(state, name) is None, name


def test_the_lab_image_ships_the_capture_app_as_a_user_app(state: PhoneState) -> None:
    assert run(state, "pm list packages -3")[1] == "package:com.example.capture\n"
    assert run(state, "pm path com.example.capture")[1].startswith("package:/data/app/")
    assert run(state, "pm uninstall com.example.capture")[1] == "Success\n"
    state.restore_preinstalled_apps()  # what SimLab.reset() does between tests
    assert "com.example.capture" in state.installed_packages
