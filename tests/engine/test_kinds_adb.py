"""adb kinds without a phone: the file-system and PNG rules they apply before or
after talking to the device (their payload validation is in test_kinds_registry)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from app.devices.base import DeviceError
from app.engine.kinds.adb_kinds import (
    AdbInstallKind,
    check_apk,
    png_size,
    resolve_pull_target,
    safe_name,
)
from app.engine.kinds.base import PermanentError
from app.engine.kinds.demo import TAP_AREA, tap_point
from tests.engine.kindctx import KindTestContext


def tiny_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                             0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_png_size_reads_the_ihdr_chunk() -> None:
    assert png_size(tiny_png(36, 64)) == (36, 64)
    with pytest.raises(DeviceError, match="not a PNG"):
        png_size(b"\xff\xd8\xff\xe0 jpeg bytes here....")
    with pytest.raises(DeviceError, match="not a PNG"):
        png_size(b"")


def test_screenshot_names_are_file_safe() -> None:
    assert safe_name("127.0.0.1:5555") == "127.0.0.1_5555"
    assert safe_name("emulator-5554") == "emulator-5554"
    assert safe_name("a/b\\c d") == "a_b_c_d"


def test_pull_target_stays_in_the_artifacts_folder(tmp_path: Path) -> None:
    art = tmp_path / "art"
    art.mkdir()
    assert resolve_pull_target(art, "/sdcard/log.txt", None) == art.resolve() / "log.txt"
    assert resolve_pull_target(art, "/sdcard/log.txt", "sub/x.txt") == (
        art.resolve() / "sub" / "x.txt")
    with pytest.raises(PermanentError, match="outside the artifacts folder"):
        resolve_pull_target(art, "/sdcard/log.txt", "sub/../../x.txt")
    (art / "link").symlink_to(tmp_path)  # a link out of the folder does not get out either
    with pytest.raises(PermanentError, match="outside the artifacts folder"):
        resolve_pull_target(art, "/sdcard/log.txt", "link/x.txt")
    outside = tmp_path / "elsewhere" / "x.txt"
    assert resolve_pull_target(art, "/sdcard/log.txt", str(outside)) == outside


def test_apk_checks_are_permanent_failures(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="APK file not found"):
        check_apk(tmp_path / "missing.apk")
    text = tmp_path / "notes.apk"
    text.write_text("not a zip")
    with pytest.raises(PermanentError, match="not a zip archive"):
        check_apk(text)


@pytest.mark.asyncio
async def test_a_device_kind_without_a_device_fails_permanently(tmp_path: Path) -> None:
    ctx = KindTestContext(tmp_path, kind="adb.install")
    kind = AdbInstallKind()
    with pytest.raises(PermanentError, match="needs a device"):
        await kind.run(ctx, kind.validate({"apk": str(tmp_path / "x.apk")}))


def test_demo_taps_stay_on_the_smallest_screen() -> None:
    left, top, width, height = TAP_AREA
    points = [tap_point(i) for i in range(1, 51)]
    assert all(left <= x < left + width and top <= y < top + height for x, y in points)
    assert all(x < 360 and y < 640 for x, y in points)
    assert len(set(points)) > 40  # spread out, not one spot
