"""Built-in task kinds that drive one phone through its ``DeviceHandle``.

Payload checks that can be made before a task is stored (package-name syntax,
absolute device paths) live in ``validate``; checks of the console's own files
(an APK that vanished) happen at run time and raise ``PermanentError`` because
another attempt cannot fix them.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import struct
import zipfile
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from app.core.errors import ValidationError
from app.core.payload import Field, Schema
from app.devices.base import (
    CommandCancelledError,
    CommandTimeoutError,
    DeviceError,
    DeviceGoneError,
    ShellResult,
)
from app.engine.kinds.base import DeviceHandle, PermanentError, RunContext, TaskKind

PACKAGE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$")
ACTIVITY_RE = re.compile(r"^\.?[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$")
PACKAGE_FIELD = Field("package", "str", required=True, max_length=255,
                      help="Package name, e.g. com.example.app.")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ERROR_TAIL_CHARS = 2000
TEMP_APK_DIR = "/data/local/tmp"
# pm failures another attempt cannot fix (the APK or the phone's state is wrong).
PERMANENT_INSTALL_FAILURES = (
    "INSTALL_FAILED_INVALID_APK", "INSTALL_FAILED_ALREADY_EXISTS",
    "INSTALL_FAILED_VERSION_DOWNGRADE", "INSTALL_FAILED_UPDATE_INCOMPATIBLE",
    "INSTALL_FAILED_NO_MATCHING_ABIS", "INSTALL_FAILED_OLDER_SDK", "INSTALL_FAILED_NEWER_SDK",
    "INSTALL_FAILED_TEST_ONLY", "INSTALL_FAILED_DUPLICATE_PERMISSION",
    "INSTALL_FAILED_CONFLICTING_PROVIDER", "INSTALL_FAILED_MISSING_SHARED_LIBRARY",
    "INSTALL_PARSE_FAILED_",
)


class CommandExitError(DeviceError):
    """A device command ran and reported failure (nonzero exit or an error line)."""

    def __init__(self, what: str, result: ShellResult) -> None:
        tail = result.output[-ERROR_TAIL_CHARS:].rstrip()
        code = "unknown" if result.exit_code is None else str(result.exit_code)
        super().__init__(f"{what} exited with code {code}" + (f": {tail}" if tail else ""))
        self.result = result


def require_device(ctx: RunContext, kind: str) -> DeviceHandle:
    """The attempt's device; a kind that needs one and has none cannot succeed."""
    if ctx.device is None:
        raise PermanentError(f"{kind} needs a device but the attempt has none")
    return ctx.device


def check_package(payload: dict[str, Any], field: str = "package") -> None:
    value = payload.get(field)
    if value is not None and not PACKAGE_RE.match(value):
        raise ValidationError(
            f"payload field {field!r} is not a package name like com.example.app: {value!r}",
            field=field,
        )


class PackageKind(TaskKind):
    """A kind whose payload names an app in ``package``: its syntax is checked before
    the task is stored (a typo would otherwise fail on every phone at run time)."""

    def validate(self, payload: Any) -> dict[str, Any]:
        out = super().validate(payload)
        check_package(out)
        return out


def check_device_path(value: str, field: str) -> None:
    if not value.startswith("/") or "\x00" in value or "\n" in value:
        raise ValidationError(
            f"payload field {field!r} must be an absolute path on the device, like /sdcard/x",
            field=field,
        )


def safe_name(text: str) -> str:
    """A file-name-safe form of a serial such as ``127.0.0.1:5555``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text) or "device"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk.

    Raises:
        DeviceError: the bytes are not a PNG.
    """
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise DeviceError(f"the screenshot is not a PNG ({len(data)} bytes)")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _is_permanent_install_failure(text: str) -> bool:
    return any(code in text for code in PERMANENT_INSTALL_FAILURES)


class AdbShellKind(TaskKind):
    name = "adb.shell"
    title = "Shell command"
    description = "Run a shell command on the phone and record its output and exit code."
    schema = Schema((
        Field("command", "str", required=True, help="Command line run by the phone's sh."),
        Field("timeout_s", "float", min=0.1, max=7 * 24 * 3600.0,
              help="Stop the command after this many seconds (default: the task's timeout)."),
        Field("check", "bool", default=True, help="Fail the attempt on a nonzero exit code."),
        Field("output_limit", "int", default=64 * 1024, min=256, max=16 * 1024 * 1024,
              help="Keep at most this many bytes of output (head and tail)."),
    ))

    async def run(self, ctx: RunContext, payload: dict[str, Any]) -> dict[str, Any]:
        device = require_device(ctx, self.name)
        result = await device.shell(payload["command"], timeout=payload.get("timeout_s"),
                                    output_limit=payload["output_limit"])
        if payload["check"] and result.exit_code != 0:
            raise CommandExitError("command", result)
        return {"output": result.output, "exit_code": result.exit_code,
                "omitted_bytes": result.omitted_bytes}


class AdbInstallKind(TaskKind):
    name = "adb.install"
    title = "Install APK"
    description = "Install an APK file from this computer on the phone."
    schema = Schema((
        Field("apk", "path", required=True, help="APK file on this computer."),
        Field("replace", "bool", default=True,
              help="Replace the app if it is installed; off refuses (pm install -R)."),
    ))

    async def run(self, ctx: RunContext, payload: dict[str, Any]) -> dict[str, Any]:
        device = require_device(ctx, self.name)
        apk = Path(payload["apk"]).expanduser()
        await ctx.run_blocking(check_apk, apk)
        if payload["replace"]:
            try:
                message = await device.install(apk)
            except (DeviceGoneError, CommandCancelledError, CommandTimeoutError):
                raise
            except DeviceError as exc:
                if _is_permanent_install_failure(str(exc)):
                    raise PermanentError(f"install refused: {exc}") from exc
                raise
            return {"message": message.strip()}
        return {"message": await _install_without_replace(device, apk)}


def check_apk(apk: Path) -> None:
    """Refuse a missing file or one that is not a zip (an APK is a zip archive)."""
    if not apk.is_file():
        raise PermanentError(f"APK file not found: {apk}")
    if not zipfile.is_zipfile(apk):
        raise PermanentError(f"not an APK (not a zip archive): {apk}")


async def _install_without_replace(device: DeviceHandle, apk: Path) -> str:
    """Install refusing to replace an installed app.

    Modern pm ignores ``-r`` and replaces by default; ``-R`` turns replacing off
    (pm then answers ``INSTALL_FAILED_ALREADY_EXISTS``).
    """
    remote = f"{TEMP_APK_DIR}/taskdesk-{secrets.token_hex(6)}.apk"
    await device.push(apk, remote)
    try:
        result = await device.shell(["pm", "install", "-R", remote])
    finally:
        # Left-over APKs fill /data; removal is best effort (the phone may be gone).
        with contextlib.suppress(DeviceError):
            await device.shell(["rm", "-f", remote], timeout=10.0)
    text = result.output.strip()
    if "Success" in text and result.exit_code in (0, None):
        return text
    if _is_permanent_install_failure(text):
        raise PermanentError(f"install refused: {text}")
    raise CommandExitError("pm install", result)


class AdbUninstallKind(PackageKind):
    name = "adb.uninstall"
    title = "Uninstall app"
    description = "Remove an app from the phone."
    schema = Schema((PACKAGE_FIELD,))

    async def run(self, ctx: RunContext, payload: dict[str, Any]) -> dict[str, Any]:
        device = require_device(ctx, self.name)
        try:
            message = (await device.uninstall(payload["package"])).strip()
        except (DeviceGoneError, CommandCancelledError, CommandTimeoutError):
            raise
        except DeviceError as exc:
            if "Failure" in str(exc):
                raise PermanentError(f"uninstall refused: {exc}") from exc
            raise
        if message.startswith("Failure"):
            # Typically "not installed": another attempt gives the same answer.
            raise PermanentError(f"uninstall refused: {message}")
        return {"message": message}


class AdbAppStartKind(PackageKind):
    name = "adb.app_start"
    title = "Start app"
    description = "Start an activity (am start -n) or the app's launcher activity (monkey)."
    schema = Schema((
        PACKAGE_FIELD,
        Field("activity", "str", max_length=255,
              help="Activity class, e.g. .MainActivity; empty starts the launcher activity."),
    ))

    def validate(self, payload: Any) -> dict[str, Any]:
        out = super().validate(payload)
        activity = out.get("activity")
        if activity == "":
            del out["activity"]
        elif activity is not None and not ACTIVITY_RE.match(activity):
            raise ValidationError(
                f"payload field 'activity' is not a class name like .MainActivity: {activity!r}",
                field="activity",
            )
        return out

    async def run(self, ctx: RunContext, payload: dict[str, Any]) -> dict[str, Any]:
        device = require_device(ctx, self.name)
        return await start_app(device, payload["package"], payload.get("activity"))


async def start_app(device: DeviceHandle, package: str, activity: str | None) -> dict[str, Any]:
    """Start ``package`` (at ``activity`` if given); raise if the phone reports an error."""
    if activity:
        command = ["am", "start", "-n", f"{package}/{activity}"]
    else:
        command = ["monkey", "-p", package, "-c", "android.intent.category.LAUNCHER", "1"]
    result = await device.shell(command)
    # am and monkey report some failures with exit code 0 and an error line.
    failed = result.exit_code != 0 or "Error" in result.output or "aborted" in result.output
    if failed:
        raise CommandExitError("am start" if activity else "monkey", result)
    return {"package": package, "activity": activity, "output": result.output.strip()}


class AdbAppStopKind(PackageKind):
    name = "adb.app_stop"
    title = "Stop app"
    description = "Force-stop an app (am force-stop)."
    schema = Schema((PACKAGE_FIELD,))

    async def run(self, ctx: RunContext, payload: dict[str, Any]) -> dict[str, Any]:
        device = require_device(ctx, self.name)
        result = await device.shell(["am", "force-stop", payload["package"]])
        if result.exit_code != 0:
            raise CommandExitError("am force-stop", result)
        return {"package": payload["package"], "stopped": True}


class AdbScreenshotKind(TaskKind):
    name = "adb.screenshot"
    title = "Screenshot"
    description = "Save a PNG of the phone's screen as an artifact."

    async def run(self, ctx: RunContext, payload: dict[str, Any]) -> dict[str, Any]:
        device = require_device(ctx, self.name)
        return await take_screenshot(ctx, device)


async def take_screenshot(ctx: RunContext, device: DeviceHandle) -> dict[str, Any]:
    """Capture the screen into ``ctx.artifacts_dir`` and reference it from the execution."""
    data = await device.screenshot()
    width, height = png_size(data)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")[:-3]  # UTC, to the millisecond
    path = ctx.artifacts_dir / f"screenshot-{safe_name(device.serial)}-{stamp}.png"
    await ctx.run_blocking(_write_file, path, data)
    ctx.add_artifact(path, "screenshot")
    return {"path": str(path), "bytes": len(data), "width": width, "height": height}


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


class AdbPushKind(TaskKind):
    name = "adb.push"
    title = "Push file"
    description = "Copy a file from this computer to the phone."
    schema = Schema((
        Field("local", "path", required=True, help="File on this computer."),
        Field("remote", "str", required=True, max_length=1024,
              help="Destination on the phone; a path ending in / is a directory."),
    ))

    def validate(self, payload: Any) -> dict[str, Any]:
        out = super().validate(payload)
        check_device_path(out["remote"], "remote")
        return out

    async def run(self, ctx: RunContext, payload: dict[str, Any]) -> dict[str, Any]:
        device = require_device(ctx, self.name)
        local = Path(payload["local"]).expanduser()
        if not await ctx.run_blocking(local.is_file):
            raise PermanentError(f"local file not found: {local}")
        remote = payload["remote"]
        if remote.endswith("/"):
            remote += local.name
        count = await device.push(local, remote)
        return {"remote": remote, "bytes": count}


class AdbPullKind(TaskKind):
    name = "adb.pull"
    title = "Pull file"
    description = "Copy a file from the phone into the execution's artifacts."
    schema = Schema((
        Field("remote", "str", required=True, max_length=1024, help="File on the phone."),
        Field("local", "str", max_length=1024,
              help="Where to save it: a name inside the artifacts folder, or an absolute path "
                   "(default: the remote file's name in the artifacts folder)."),
    ))

    def validate(self, payload: Any) -> dict[str, Any]:
        out = super().validate(payload)
        check_device_path(out["remote"], "remote")
        if not PurePosixPath(out["remote"]).name or out["remote"].endswith("/"):
            raise ValidationError("payload field 'remote' must name a file", field="remote")
        local = out.get("local")
        if local == "":
            del out["local"]
        elif local is not None and not Path(local).is_absolute() and ".." in Path(local).parts:
            raise ValidationError(
                "payload field 'local' must stay inside the artifacts folder (no '..')",
                field="local",
            )
        return out

    async def run(self, ctx: RunContext, payload: dict[str, Any]) -> dict[str, Any]:
        device = require_device(ctx, self.name)
        local = resolve_pull_target(ctx.artifacts_dir, payload["remote"], payload.get("local"))
        await ctx.run_blocking(lambda: local.parent.mkdir(parents=True, exist_ok=True))
        count = await device.pull(payload["remote"], local)
        if local.is_relative_to(ctx.artifacts_dir.resolve()):
            ctx.add_artifact(local, "pulled file")
        return {"path": str(local), "bytes": count}


def resolve_pull_target(artifacts_dir: Path, remote: str, local: str | None) -> Path:
    """Where ``adb.pull`` writes: inside ``artifacts_dir`` unless an absolute path is given.

    Raises:
        PermanentError: a relative ``local`` that escapes ``artifacts_dir`` (e.g. by a link).
    """
    if local and Path(local).expanduser().is_absolute():
        return Path(local).expanduser()
    base = artifacts_dir.resolve()
    target = (base / (local or PurePosixPath(remote).name)).resolve()
    if not target.is_relative_to(base) or target == base:
        raise PermanentError(f"pull target {local!r} is outside the artifacts folder")
    return target


class AdbRebootKind(TaskKind):
    name = "adb.reboot"
    title = "Reboot"
    description = "Reboot the phone."

    async def run(self, ctx: RunContext, payload: dict[str, Any]) -> dict[str, Any]:
        device = require_device(ctx, self.name)
        await device.reboot()
        return {"rebooted": True}


ADB_KINDS: tuple[type[TaskKind], ...] = (
    AdbShellKind, AdbInstallKind, AdbUninstallKind, AdbAppStartKind, AdbAppStopKind,
    AdbScreenshotKind, AdbPushKind, AdbPullKind, AdbRebootKind,
)
