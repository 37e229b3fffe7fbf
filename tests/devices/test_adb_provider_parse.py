"""The adb provider's parsers: getprop, battery, pm verdicts, shell framing, exit marker."""

from __future__ import annotations

import pytest

from app.core.enums import DeviceState
from app.devices.adb_parse import (
    EXIT_MARKER,
    V2_EXIT,
    V2_STDERR,
    V2_STDOUT,
    MarkerStripper,
    ShellV2Decoder,
    check_pm_output,
    classify_transport,
    encode_v2_packet,
    metadata_from_props,
    parse_battery,
    parse_device_list,
    parse_getprop,
    usb_path_from_devpath,
    validate_package_name,
    with_exit_marker,
)
from app.devices.base import DeviceError

GETPROP = """\
[dalvik.vm.heapsize]: [512m]
[ro.build.version.release]: [14]
[ro.build.version.sdk]: [34]
[ro.product.cpu.abi]: [arm64-v8a]
[ro.product.manufacturer]: [Google]
[ro.product.model]: [Pixel 7 Pro]
[ro.taskdesk.sim]: [1]
[persist.sys.multi]: [first line
second line]
[empty.value]: []
"""


def test_getprop_parses_every_property_including_multiline_and_empty_values() -> None:
    props = parse_getprop(GETPROP)
    assert props["ro.product.model"] == "Pixel 7 Pro"
    assert props["ro.build.version.sdk"] == "34"
    assert props["persist.sys.multi"] == "first line\nsecond line"
    assert props["empty.value"] == ""
    assert len(props) == 9


def test_getprop_tolerates_crlf_line_endings() -> None:
    props = parse_getprop(GETPROP.replace("\n", "\r\n"))
    assert props["ro.product.model"] == "Pixel 7 Pro"
    assert props["ro.product.cpu.abi"] == "arm64-v8a"


def test_metadata_picks_fields_and_marks_the_simulated_lab() -> None:
    meta = metadata_from_props("127.0.0.1:41001", parse_getprop(GETPROP))
    assert meta.transport == "sim"
    assert (meta.model, meta.manufacturer) == ("Pixel 7 Pro", "Google")
    assert (meta.android_version, meta.sdk, meta.abi) == ("14", 34, "arm64-v8a")


def test_metadata_handles_missing_or_bad_values() -> None:
    meta = metadata_from_props("R58M123", {"ro.build.version.sdk": "S",
                                           "ro.product.cpu.abilist": "x86_64,x86"})
    assert meta.sdk is None
    assert meta.abi == "x86_64"
    assert meta.model == "" and meta.transport == "usb"


@pytest.mark.parametrize(
    ("serial", "expected"),
    [
        ("127.0.0.1:5555", "tcp"),
        ("phone.lab.local:5555", "tcp"),
        ("[::1]:5555", "tcp"),
        ("adb-R58M123-abc._adb-tls-connect._tcp", "tcp"),
        ("R58M123ABC", "usb"),
        ("emulator-5554", "usb"),
    ],
)
def test_transport_from_serial(serial: str, expected: str) -> None:
    assert classify_transport(serial, {}) == expected


def test_sim_property_wins_over_serial_shape() -> None:
    assert classify_transport("127.0.0.1:5555", {"ro.taskdesk.sim": "1"}) == "sim"
    assert classify_transport("127.0.0.1:5555", {"ro.taskdesk.sim": "0"}) == "tcp"


def test_devpath_unknown_means_no_usb_path() -> None:
    assert usb_path_from_devpath("unknown") == ""
    assert usb_path_from_devpath("usb:1-1.4\n") == "usb:1-1.4"


def test_device_list_maps_adb_states() -> None:
    block = "A1\tdevice\nB2\toffline\nC3\tunauthorized\nD4\tauthorizing\n\n"
    assert parse_device_list(block) == {
        "A1": DeviceState.ONLINE,
        "B2": DeviceState.OFFLINE,
        "C3": DeviceState.UNAUTHORIZED,
        "D4": DeviceState.OFFLINE,
    }


DUMPSYS_BATTERY = """\
Current Battery Service state:
  AC powered: false
  USB powered: true
  Wireless powered: false
  Dock powered: false
  Max charging current: 500000
  status: 2
  health: 2
  present: true
  level: 87
  scale: 100
  voltage: 4215
  temperature: 285
  technology: Li-ion
"""


def test_battery_level_temperature_in_celsius_and_charging() -> None:
    info = parse_battery(DUMPSYS_BATTERY)
    assert info.level == 87
    assert info.temperature_c == pytest.approx(28.5)
    assert info.charging is True


def test_battery_not_charging_when_no_source_is_powered() -> None:
    text = DUMPSYS_BATTERY.replace("USB powered: true", "USB powered: false")
    assert parse_battery(text).charging is False


def test_battery_scale_and_missing_fields() -> None:
    info = parse_battery("level: 50\nscale: 200\ntemperature: -35\n")
    assert info.level == 25
    assert info.temperature_c == pytest.approx(-3.5)
    assert info.charging is None
    assert parse_battery("Can't find service: battery") == parse_battery("")
    assert parse_battery("").level is None


def test_pm_success_returns_message() -> None:
    assert check_pm_output("Performing Streamed Install\nSuccess\n", "install") == (
        "Performing Streamed Install\nSuccess"
    )


def test_pm_failure_raises_with_reason() -> None:
    with pytest.raises(DeviceError, match=r"INSTALL_FAILED_INVALID_APK: bad zip"):
        check_pm_output("Failure [INSTALL_FAILED_INVALID_APK: bad zip]\n", "install")
    with pytest.raises(DeviceError, match="DELETE_FAILED_INTERNAL_ERROR"):
        check_pm_output("Failure [DELETE_FAILED_INTERNAL_ERROR]", "uninstall")
    with pytest.raises(DeviceError, match="Error: Unable to open file"):
        check_pm_output("Error: Unable to open file: /x.apk\n", "install")
    with pytest.raises(DeviceError, match="unexpected"):
        check_pm_output("sh: pm: not found", "install")


@pytest.mark.parametrize("name", ["com.example.app", "org.taskdesk.sample_1", "a"])
def test_valid_package_names(name: str) -> None:
    assert validate_package_name(name) == name


@pytest.mark.parametrize("name", ["", "com.x; reboot", "com..x", "1com.x", "com.x$(id)"])
def test_invalid_package_names_are_refused(name: str) -> None:
    with pytest.raises(DeviceError):
        validate_package_name(name)


def _strip(chunks: list[bytes]) -> tuple[bytes, int | None]:
    stripper = MarkerStripper()
    out = b"".join(stripper.feed(c) for c in chunks)
    rest, code = stripper.finish()
    return out + rest, code


def test_marker_is_removed_and_exit_code_read_across_chunk_boundaries() -> None:
    stream = b"hello\nworld\n" + EXIT_MARKER + b"42\n"
    for size in (1, 3, 7, len(stream)):
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert _strip(chunks) == (b"hello\nworld\n", 42)


def test_marker_missing_means_unknown_exit_code_and_output_kept() -> None:
    assert _strip([b"partial output, device vanished"]) == (
        b"partial output, device vanished", None)


def test_marker_only_counts_at_the_very_end() -> None:
    stream = EXIT_MARKER + b"7\nmore output\n"
    assert _strip([stream]) == (stream, None)


def test_marker_command_uses_a_newline_so_trailing_comments_do_not_hide_it() -> None:
    assert with_exit_marker("ls # list") == "ls # list\necho __TD_EXIT__$?"


def test_v2_decoder_reassembles_packets_split_anywhere() -> None:
    stream = (encode_v2_packet(V2_STDOUT, b"out")
              + encode_v2_packet(V2_STDERR, b"err")
              + encode_v2_packet(V2_STDOUT, b"")
              + encode_v2_packet(V2_EXIT, bytes([3])))
    for size in (1, 2, 5, 6, len(stream)):
        decoder = ShellV2Decoder()
        packets = [p for i in range(0, len(stream), size)
                   for p in decoder.feed(stream[i : i + size])]
        assert packets == [(V2_STDOUT, b"out"), (V2_STDERR, b"err"), (V2_STDOUT, b""),
                           (V2_EXIT, b"\x03")]
        assert decoder.pending == 0


def test_v2_decoder_keeps_incomplete_packet() -> None:
    decoder = ShellV2Decoder()
    assert list(decoder.feed(encode_v2_packet(V2_STDOUT, b"abcdef")[:8])) == []
    assert decoder.pending == 8
