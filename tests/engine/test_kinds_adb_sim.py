"""Every adb kind run for real: simulated phones behind a real adb server, reached
through the real AdbProvider (the engine's own handle is covered by its tests)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import struct
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.devices.adb import AdbProvider
from app.devices.base import CommandTimeoutError
from app.devices.sim import SimLab
from app.engine.devicehandle import EngineDeviceHandle
from app.engine.kinds.adb_kinds import CommandExitError
from app.engine.kinds.base import PermanentError, TaskKind
from app.engine.kinds.registry import KindRegistry, default_registry
from tests.engine.kindctx import KindTestContext

PACKAGE = "com.taskdesk.kindtest"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimLab]:
    with SimLab(2, tmp_path_factory.mktemp("kindlab"), seed=5, reboot_seconds=0.5) as running:
        yield running


@pytest.fixture(scope="module")
def provider(lab: SimLab) -> AdbProvider:
    return AdbProvider(lab.adb_host, lab.adb_port)


@pytest.fixture(scope="module")
def pool() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    with concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="kind-dev") as executor:
        yield executor


@pytest.fixture(scope="module")
def registry() -> KindRegistry:
    return default_registry(load_plugins=False)


class Runner:
    """Runs a kind the way the engine does: validated payload, a context with a device."""

    def __init__(self, lab: SimLab, provider: AdbProvider, pool: Any, registry: KindRegistry,
                 tmp_path: Path, serial: str) -> None:
        self.lab, self.provider, self.pool, self.registry = lab, provider, pool, registry
        self.tmp_path, self.serial = tmp_path, serial
        self.ctx: KindTestContext | None = None

    def context(self, kind: str, timeout_s: float = 60.0) -> KindTestContext:
        cancel = threading.Event()
        ctx = KindTestContext(self.tmp_path / "artifacts", kind=kind, timeout_s=timeout_s)
        ctx.cancel_event = cancel
        ctx.device = EngineDeviceHandle(self.provider, self.serial, self.pool, cancel,
                                        ctx.remaining_time)
        self.ctx = ctx
        return ctx

    async def __call__(self, kind: str, **payload: Any) -> Any:
        task_kind: TaskKind = self.registry.get(kind)
        return await task_kind.run(self.context(kind), task_kind.validate(payload))

    @property
    def phone(self) -> Any:
        return self.lab.phone(self.serial)


@pytest.fixture
def run(lab: SimLab, provider: AdbProvider, pool: Any, registry: KindRegistry,
        tmp_path: Path) -> Runner:
    return Runner(lab, provider, pool, registry, tmp_path, lab.serials[0])


def make_apk(path: Path, package: str = PACKAGE) -> Path:
    with zipfile.ZipFile(path, "w") as apk:
        apk.writestr("taskdesk-package.txt", package + "\n")
        apk.writestr("classes.dex", os.urandom(128))
    return path


@pytest.mark.asyncio
async def test_shell_output_exit_code_and_check(run: Runner) -> None:
    assert await run("adb.shell", command="echo hello") == {
        "output": "hello\n", "exit_code": 0, "omitted_bytes": 0}
    with pytest.raises(CommandExitError) as info:
        await run("adb.shell", command="echo some detail; exit 3")
    assert "exited with code 3" in str(info.value) and "some detail" in str(info.value)
    result = await run("adb.shell", command="exit 3", check=False)
    assert result["exit_code"] == 3


@pytest.mark.asyncio
async def test_shell_output_is_capped(run: Runner) -> None:
    await run("adb.shell", command="echo " + "x" * 3000 + " > /sdcard/big.txt")
    result = await run("adb.shell", command="cat /sdcard/big.txt", output_limit=256)
    assert result["omitted_bytes"] == 3001 - 256
    assert "bytes omitted" in result["output"]


@pytest.mark.asyncio
async def test_shell_timeout_and_cancel_interrupt_the_device_command(run: Runner) -> None:
    started = time.monotonic()
    with pytest.raises(CommandTimeoutError):
        await run("adb.shell", command="sleep 30", timeout_s=0.5)
    assert time.monotonic() - started < 3

    task = asyncio.create_task(run("adb.shell", command="sleep 30"))
    await asyncio.sleep(0.5)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 3
    assert (await run("adb.shell", command="echo still here"))["output"] == "still here\n"


@pytest.mark.asyncio
async def test_install_start_stop_uninstall_cycle(run: Runner, tmp_path: Path) -> None:
    apk = make_apk(tmp_path / "kindtest.apk")
    result = await run("adb.install", apk=str(apk))
    assert result == {"message": "Success"} and PACKAGE in run.phone.installed_packages

    started = await run("adb.app_start", package=PACKAGE)
    assert "Events injected: 1" in started["output"]
    assert PACKAGE in run.phone.running_packages
    await run("adb.app_stop", package=PACKAGE)
    assert PACKAGE not in run.phone.running_packages

    started = await run("adb.app_start", package=PACKAGE, activity=".SettingsActivity")
    assert started["activity"] == ".SettingsActivity"
    assert run.phone.state.foreground == (PACKAGE, PACKAGE + ".SettingsActivity")

    assert await run("adb.uninstall", package=PACKAGE) == {"message": "Success"}
    assert PACKAGE not in run.phone.installed_packages
    with pytest.raises(PermanentError, match="uninstall refused"):
        await run("adb.uninstall", package=PACKAGE)
    with pytest.raises(CommandExitError, match="(?s)monkey exited with code 252: .*monkey aborted"):
        await run("adb.app_start", package=PACKAGE)
    with pytest.raises(CommandExitError, match="(?s)am start exited with code 1: .*does not exist"):
        await run("adb.app_start", package=PACKAGE, activity=".Main")


@pytest.mark.asyncio
async def test_install_without_replace_cleans_up_its_temp_file(run: Runner,
                                                               tmp_path: Path) -> None:
    apk = make_apk(tmp_path / "noreplace.apk", "com.taskdesk.noreplace")
    assert (await run("adb.install", apk=str(apk), replace=False))["message"] == "Success"
    assert "com.taskdesk.noreplace" in run.phone.installed_packages
    listing = await run("adb.shell", command="ls /data/local/tmp", check=False)
    assert "taskdesk-" not in listing["output"]
    await run("adb.uninstall", package="com.taskdesk.noreplace")


@pytest.mark.asyncio
async def test_install_refuses_bad_files_before_touching_the_phone(run: Runner,
                                                                   tmp_path: Path) -> None:
    before = run.phone.commands_run
    with pytest.raises(PermanentError, match="APK file not found"):
        await run("adb.install", apk=str(tmp_path / "missing.apk"))
    (tmp_path / "fake.apk").write_bytes(b"MZ not a zip")
    with pytest.raises(PermanentError, match="not a zip archive"):
        await run("adb.install", apk=str(tmp_path / "fake.apk"))
    assert run.phone.commands_run == before


@pytest.mark.asyncio
async def test_screenshot_is_saved_as_an_artifact(run: Runner, tmp_path: Path) -> None:
    result = await run("adb.screenshot")
    path = Path(result["path"])
    assert path.parent == tmp_path / "artifacts"
    assert path.name.startswith("screenshot-127.0.0.1_") and path.suffix == ".png"
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) == result["bytes"]
    assert (result["width"], result["height"]) == struct.unpack(">II", data[16:24])
    assert (result["width"], result["height"]) == (360, 640)
    assert run.ctx is not None and run.ctx.artifacts == [(path, "screenshot")]


@pytest.mark.asyncio
async def test_push_then_pull_round_trip(run: Runner, tmp_path: Path) -> None:
    payload = os.urandom(300_000)
    local = tmp_path / "blob.bin"
    local.write_bytes(payload)
    pushed = await run("adb.push", local=str(local), remote="/sdcard/Download/")
    assert pushed == {"remote": "/sdcard/Download/blob.bin", "bytes": len(payload)}

    pulled = await run("adb.pull", remote="/sdcard/Download/blob.bin")
    assert Path(pulled["path"]) == (tmp_path / "artifacts" / "blob.bin").resolve()
    assert Path(pulled["path"]).read_bytes() == payload and pulled["bytes"] == len(payload)
    assert run.ctx is not None and run.ctx.artifacts[0][1] == "pulled file"

    renamed = await run("adb.pull", remote="/sdcard/Download/blob.bin", local="sub/copy.bin")
    assert Path(renamed["path"]) == (tmp_path / "artifacts" / "sub" / "copy.bin").resolve()
    elsewhere = tmp_path / "outside" / "copy.bin"
    absolute = await run("adb.pull", remote="/sdcard/Download/blob.bin", local=str(elsewhere))
    assert absolute["path"] == str(elsewhere) and elsewhere.read_bytes() == payload
    assert run.ctx is not None and run.ctx.artifacts == []  # not an artifact of the run

    with pytest.raises(PermanentError, match="local file not found"):
        await run("adb.push", local=str(tmp_path / "nope"), remote="/sdcard/x")


@pytest.mark.asyncio
async def test_demo_capture_reports_progress_step_by_step(run: Runner) -> None:
    taps_before = run.phone.state.input_events
    result = await run("demo.capture", steps=3, step_ms=10, package="com.android.settings",
                       screenshot=True)
    assert result["items_collected"] == 3 and result["serial"] == run.serial
    assert Path(result["screenshot"]).is_file()
    assert run.phone.state.input_events - taps_before == 3
    assert run.ctx is not None
    calls = [(c["step"], c["percent"], c["message"]) for c in run.ctx.progress_calls]
    assert calls == [
        ("launch", 0, "Launching com.android.settings"),
        ("capture", 31, "Capturing item 1/3"),
        ("capture", 63, "Capturing item 2/3"),
        ("capture", 95, "Capturing item 3/3"),
        ("screenshot", None, "Taking a screenshot"),
        ("finalize", 100, "Collected 3 items"),
    ]


@pytest.mark.asyncio
async def test_demo_capture_is_cancellable_mid_step(run: Runner) -> None:
    taps_before = run.phone.state.input_events
    task = asyncio.create_task(run("demo.capture", steps=50, step_ms=10_000,
                                   package="com.android.settings"))
    while run.phone.state.input_events == taps_before:  # first tap done, now in its pause
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 3  # the device-side sleep was interrupted
    await asyncio.sleep(0.3)
    assert run.phone.state.input_events - taps_before == 1  # and nothing ran after it
    assert run.ctx is not None
    assert [c["step"] for c in run.ctx.progress_calls] == ["launch"]


@pytest.mark.asyncio
async def test_reboot(lab: SimLab, provider: AdbProvider, pool: Any, registry: KindRegistry,
                      tmp_path: Path) -> None:
    serial = lab.serials[1]
    run = Runner(lab, provider, pool, registry, tmp_path, serial)
    reboots = run.phone.reboots
    assert await run("adb.reboot") == {"rebooted": True}
    deadline = time.monotonic() + 15
    while run.phone.reboots == reboots:  # down, then back up
        assert time.monotonic() < deadline, "the phone never came back"
        await asyncio.sleep(0.05)
    await asyncio.to_thread(lab.wait_for_states, {serial: "device"}, 15)
    assert (await run("adb.shell", command="echo back"))["output"] == "back\n"
