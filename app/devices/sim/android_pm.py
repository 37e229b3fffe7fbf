"""Package and activity commands of the simulated phone: ``pm``, ``am``, ``monkey``, ``ps``.

An "APK" is any file that starts with ``PK`` (a zip). Its package name is the
text of a zip member ``taskdesk-package.txt`` if present, else the file name
without ``.apk``, so tests can build installable packages with ``zipfile``.
"""

from __future__ import annotations

import contextlib
import io
import posixpath
import time
import zipfile

from app.devices.sim.fs import FsError
from app.devices.sim.shell import Ctx, command
from app.devices.sim.state import InstalledApp, PhoneState

PACKAGE_MEMBER = "taskdesk-package.txt"
INVALID_APK = "Failure [INSTALL_FAILED_INVALID_APK]"
# Options of pm/am that take a value (skipped when looking for operands).
_PM_VALUED = {"--user", "-i", "--install-reason", "-S", "--abi", "-p", "--pkg"}
_AM_VALUED = {"-a", "-d", "-t", "-c", "-f", "-p", "--user", "-e", "--es", "--ei", "--ez",
              "--el", "--ef", "--eu", "--ecn", "--eia", "--esa", "--display", "--windowingMode",
              "--activityType", "--start-profiler", "-P", "--sampling", "-R"}
_AM_TWO_VALUES = {"-e", "--es", "--ei", "--ez", "--el", "--ef", "--eu", "--ecn", "--eia", "--esa"}
MONKEY_ABORTED = 252  # monkey exits -4 when the package has no launchable activity


def _operands(args: list[str], valued: set[str]) -> tuple[list[str], list[str]]:
    """``(flags, operands)``, skipping the values of options in ``valued``."""
    flags: list[str] = []
    operands: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in valued:
            i += 3 if arg in _AM_TWO_VALUES else 2
        elif arg.startswith("-") and len(arg) > 1:
            flags.append(arg)
            i += 1
        else:
            operands.append(arg)
            i += 1
    return flags, operands


def package_name_of(data: bytes, filename: str) -> str | None:
    """The package an APK file installs, or None if it is not a valid APK."""
    if not data.startswith(b"PK"):
        return None
    name = posixpath.basename(filename).removesuffix(".apk")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if PACKAGE_MEMBER in archive.namelist():
                name = archive.read(PACKAGE_MEMBER).decode("utf-8", "replace").strip()
    except (zipfile.BadZipFile, OSError, ValueError):
        pass  # "PK" but not a readable zip: installable under its file name
    return name or None


def install(state: PhoneState, path: str) -> tuple[int, str]:
    """Install the APK at ``path`` on the phone; returns ``(status, message)``."""
    try:
        data = state.fs.read(path)
    except FsError:
        return 1, INVALID_APK
    package = package_name_of(data, path)
    if package is None:
        return 1, INVALID_APK
    now = time.time()
    app_path = f"/data/app/{package}-1/base.apk"
    previous = state.apps.get(package)
    state.fs.write(app_path, data)
    state.apps[package] = InstalledApp(
        package, app_path, previous.first_install if previous else now, now,
        (previous.version_code + 1) if previous else 1,
    )
    state.installed_packages.add(package)
    state.running_packages.discard(package)
    if state.foreground and state.foreground[0] == package:
        state.foreground = None
    state.log.add("I", "PackageManager", f"Package {package} installed from {path}")
    return 0, "Success"


def uninstall(state: PhoneState, package: str) -> tuple[int, str]:
    if package not in state.installed_packages or package in state.system_packages:
        return 1, "Failure [DELETE_FAILED_INTERNAL_ERROR]"
    state.installed_packages.discard(package)
    state.running_packages.discard(package)
    app = state.apps.pop(package, None)
    if app is not None:
        with contextlib.suppress(FsError):
            state.fs.remove(posixpath.dirname(app.path), recursive=True)
    if state.foreground and state.foreground[0] == package:
        state.foreground = None
    state.log.add("I", "PackageManager", f"Package {package} removed")
    return 0, "Success"


def launch(state: PhoneState, package: str, activity: str) -> None:
    state.running_packages.add(package)
    state.foreground = (package, activity)
    state.log.add("I", "ActivityTaskManager",
                  f"START u0 {{cmp={package}/{activity}}} from uid 2000")


def stop_package(state: PhoneState, package: str) -> None:
    state.running_packages.discard(package)
    if state.foreground and state.foreground[0] == package:
        state.foreground = None
    state.log.add("I", "ActivityManager", f"Force stopping {package} appid=10123 user=0")


@command("pm")
async def cmd_pm(ctx: Ctx, args: list[str]) -> int:
    if not args:
        return await ctx.fail("usage: pm [list|path|install|uninstall|clear] ...", 1)
    sub, rest = args[0], args[1:]
    flags, operands = _operands(rest, _PM_VALUED)
    state = ctx.state
    if sub == "list" and operands[:1] == ["packages"]:
        names = sorted(state.installed_packages)
        if "-3" in flags:
            names = [n for n in names if n not in state.system_packages]
        if "-s" in flags:
            names = [n for n in names if n in state.system_packages]
        if len(operands) > 1:
            names = [n for n in names if operands[1] in n]
        lines = [
            f"package:{_apk_path(state, n)}={n}" if "-f" in flags else f"package:{n}"
            for n in names
        ]
        await ctx.out("".join(line + "\n" for line in lines))
        return 0
    if sub == "path" and operands:
        if operands[0] not in state.installed_packages:
            return 1
        await ctx.out(f"package:{_apk_path(state, operands[0])}\n")
        return 0
    if sub == "install":
        if not operands:
            await ctx.err("Error: must specify an APK file\n")
            return 1
        status, message = install(state, ctx.path(operands[-1]))
        await (ctx.out if status == 0 else ctx.err)(message + "\n")
        return status
    if sub == "uninstall" and operands:
        status, message = uninstall(state, operands[0])
        await (ctx.out if status == 0 else ctx.err)(message + "\n")
        return status
    if sub == "clear" and operands:
        if operands[0] not in state.installed_packages:
            await ctx.err("Failed\n")
            return 1
        stop_package(state, operands[0])
        await ctx.out("Success\n")
        return 0
    return await ctx.fail(f"Unknown command: {sub}")


def _apk_path(state: PhoneState, package: str) -> str:
    app = state.apps.get(package)
    return app.path if app else f"/system/app/{package}/{package}.apk"


@command("am")
async def cmd_am(ctx: Ctx, args: list[str]) -> int:
    if not args:
        return await ctx.fail("usage: am [start|force-stop|kill|broadcast] ...")
    sub, rest = args[0], args[1:]
    state = ctx.state
    if sub in ("start", "start-activity"):
        return await _am_start(ctx, rest)
    if sub in ("force-stop", "kill") and rest:
        stop_package(state, _operands(rest, _AM_VALUED)[1][-1] if rest else "")
        return 0
    if sub == "broadcast":
        action = rest[rest.index("-a") + 1] if "-a" in rest[:-1] else "null"
        await ctx.out(
            f"Broadcasting: Intent {{ act={action} flg=0x400000 }}\n"
            "Broadcast completed: result=0\n"
        )
        return 0
    return await ctx.fail(f"Unknown command: {sub}")


async def _am_start(ctx: Ctx, args: list[str]) -> int:
    state = ctx.state
    component = args[args.index("-n") + 1] if "-n" in args[:-1] else None
    action = args[args.index("-a") + 1] if "-a" in args[:-1] else None
    if component is None and action is None:
        await ctx.err("Error: Intent does not match any activities\n")
        return 1
    if state.should_fail():
        await ctx.err("Error: Activity not started, unable to resolve Intent "
                      "(sim: injected failure)\n")
        return 1
    if component is None:
        # An implicit intent (e.g. VIEW a URL): the browser takes it.
        await ctx.out(f"Starting: Intent {{ act={action} }}\n")
        launch(state, "com.android.chrome", "com.google.android.apps.chrome.Main")
        return 0
    package, _, activity = component.partition("/")
    if activity.startswith("."):
        activity = package + activity
    await ctx.out(f"Starting: Intent {{ cmp={component} }}\n")
    if package not in state.installed_packages or not activity:
        await ctx.err(f"Error type 3\nError: Activity class {{{package}/{activity}}} "
                      "does not exist.\n")
        return 1
    launch(state, package, activity)
    if "-W" in args:
        await ctx.out(f"Status: ok\nLaunchState: COLD\nActivity: {package}/{activity}\n"
                      "TotalTime: 312\nWaitTime: 315\nComplete\n")
    return 0


@command("monkey")
async def cmd_monkey(ctx: Ctx, args: list[str]) -> int:
    package = args[args.index("-p") + 1] if "-p" in args[:-1] else None
    if package is None or package not in ctx.state.installed_packages:
        await ctx.err("** No activities found to run, monkey aborted.\n")
        return MONKEY_ABORTED
    count = args[-1] if args and args[-1].isdigit() else "1"
    launch(ctx.state, package, f"{package}.MainActivity")
    await ctx.out(
        f"  bash arg: -p\n  bash arg: {package}\nEvents injected: {count}\n"
        "## Network stats: elapsed time=12ms (0ms mobile, 0ms wifi, 12ms not connected)\n"
    )
    return 0


@command("pidof")
async def cmd_pidof(ctx: Ctx, args: list[str]) -> int:
    pids = [str(ctx.state.pid_of(name)) for name in args if name in ctx.state.running_packages]
    if not pids:
        return 1
    await ctx.out(" ".join(pids) + "\n")
    return 0


@command("ps")
async def cmd_ps(ctx: Ctx, args: list[str]) -> int:
    lines = ["USER           PID  PPID     VSZ    RSS WCHAN            ADDR S NAME"]
    lines.append("root             1     0   10932   3728 0                   0 S init")
    for name in sorted(ctx.state.running_packages):
        pid = ctx.state.pid_of(name)
        lines.append(f"u0_a123    {pid:6d}   712 1482352 98304 0                   0 S {name}")
    await ctx.out("\n".join(lines) + "\n")
    return 0
