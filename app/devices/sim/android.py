"""System commands of the simulated phone: props, dumpsys, screen, input, logcat, reboot."""

from __future__ import annotations

import asyncio
import time

from app.devices.sim.fs import FsError
from app.devices.sim.screen import render_screen
from app.devices.sim.shell import Ctx, command
from app.devices.sim.state import SCREEN_HEIGHT, SCREEN_WIDTH, PhoneState

_LOGCAT_POLL_S = 0.2
_LOGCAT_HEARTBEAT_S = 1.0
_KEY_HOME = {"3", "KEYCODE_HOME", "HOME"}


@command("getprop")
async def cmd_getprop(ctx: Ctx, args: list[str]) -> int:
    props = ctx.state.props
    if not args:
        await ctx.out("".join(f"[{k}]: [{v}]\n" for k, v in sorted(props.items())))
    else:
        default = args[1] if len(args) > 1 else ""
        await ctx.out(props.get(args[0], default) + "\n")
    return 0


@command("setprop")
async def cmd_setprop(ctx: Ctx, args: list[str]) -> int:
    if len(args) != 2:
        return await ctx.fail("need 2 arguments")
    key, value = args
    if key.startswith("ro.") and key in ctx.state.props:
        return await ctx.fail(f"failed to set property '{key}' to '{value}'")
    ctx.state.props[key] = value
    return 0


@command("dumpsys")
async def cmd_dumpsys(ctx: Ctx, args: list[str]) -> int:
    service = args[0] if args else ""
    state = ctx.state
    if service == "battery":
        if len(args) > 1:
            return await _battery_control(ctx, args[1:])
        await ctx.out(battery_report(state))
    elif service == "window":
        fg = state.foreground or ("com.android.launcher3", "com.android.launcher3.Launcher")
        await ctx.out(
            "WINDOW MANAGER WINDOWS (dumpsys window windows)\n"
            f"  mCurrentFocus=Window{{5f3a2b1 u0 {fg[0]}/{fg[1]}}}\n"
            f"  mFocusedApp=ActivityRecord{{8c1d2e u0 {fg[0]}/{fg[1]} t42}}\n"
        )
    elif service == "display":
        await ctx.out(
            "DISPLAY MANAGER (dumpsys display)\n"
            "  mViewports=[DisplayViewport{type=INTERNAL, valid=true, isActive=true, "
            f"displayId=0, uniqueId='local:0', physicalPort=0, orientation=0, "
            f"deviceWidth={SCREEN_WIDTH}, deviceHeight={SCREEN_HEIGHT}}}]\n"
        )
    elif service == "package" and len(args) > 1:
        await ctx.out(_package_report(state, args[1]))
    elif service == "":
        await ctx.out("Currently running services:\n  activity\n  battery\n  display\n"
                      "  package\n  window\n")
    else:
        await ctx.out(f"Can't find service: {service}\n")
    return 0


def battery_report(state: PhoneState) -> str:
    """``dumpsys battery`` in Android's format (temperature in tenths of a degree)."""
    snap = state.battery.snapshot()
    return (
        "Current Battery Service state:\n"
        f"  AC powered: false\n"
        f"  USB powered: {'true' if snap.charging else 'false'}\n"
        "  Wireless powered: false\n"
        "  Dock powered: false\n"
        "  Max charging current: 500000\n"
        "  Max charging voltage: 5000000\n"
        f"  Charge counter: {snap.level * 40000}\n"
        f"  status: {snap.status}\n"
        "  health: 2\n"
        "  present: true\n"
        f"  level: {snap.level}\n"
        "  scale: 100\n"
        f"  voltage: {3500 + snap.level * 7}\n"
        f"  temperature: {round(snap.temperature_c * 10)}\n"
        "  technology: Li-ion\n"
    )


async def _battery_control(ctx: Ctx, args: list[str]) -> int:
    """``dumpsys battery set level N`` / ``set temp N`` / ``unplug`` / ``reset``."""
    battery = ctx.state.battery
    try:
        if args[0] == "unplug":
            battery.set(charging=False)
        elif args[0] == "reset":
            battery.set(charging=True)
        elif args[0] == "set" and len(args) == 3 and args[1] == "level":
            battery.set(level=int(args[2]))
        elif args[0] == "set" and len(args) == 3 and args[1] == "temp":
            battery.set(temperature_c=int(args[2]) / 10)
        elif args[0] == "set" and len(args) == 3 and args[1] in ("ac", "usb"):
            battery.set(charging=args[2] == "1")
        else:
            return await ctx.fail(f"unknown battery command: {' '.join(args)}", 255)
    except ValueError:
        return await ctx.fail("bad value", 255)
    return 0


def _package_report(state: PhoneState, package: str) -> str:
    if package not in state.installed_packages:
        return ""
    app = state.apps.get(package)
    first = app.first_install if app else state.boot_time
    last = app.last_update if app else state.boot_time
    fmt = "%Y-%m-%d %H:%M:%S"
    return (
        f"Packages:\n  Package [{package}] (5b2c9d1):\n"
        f"    versionCode={app.version_code if app else 1} minSdk=24 targetSdk=34\n"
        f"    versionName={app.version_name if app else '1.0'}\n"
        f"    pkgFlags=[ {'HAS_CODE ALLOW_BACKUP' if app else 'SYSTEM HAS_CODE'} ]\n"
        f"    firstInstallTime={time.strftime(fmt, time.localtime(first))}\n"
        f"    lastUpdateTime={time.strftime(fmt, time.localtime(last))}\n"
        "    signatures=PackageSignatures{7d0e6f5 version:2, signatures:[a1b2c3d4], "
        "past signatures:[]}\n"
    )


def screen_png(state: PhoneState) -> bytes:
    """The current screen, re-rendered only when what it shows changed."""
    level = state.battery.snapshot().level
    foreground = state.foreground[0] if state.foreground else None
    key = (level, foreground)
    cached = state.screen_cache
    if cached is not None and cached[0] == key:
        return cached[1]
    png = render_screen(
        SCREEN_WIDTH,
        SCREEN_HEIGHT,
        serial_no=state.profile.serial_no,
        model=state.profile.model,
        battery_level=level,
        foreground=foreground,
    )
    state.screen_cache = (key, png)
    return png


@command("screencap")
async def cmd_screencap(ctx: Ctx, args: list[str]) -> int:
    if ctx.state.should_fail():
        return await ctx.fail("Capturing failed (sim: injected failure).")
    operands = [a for i, a in enumerate(args) if not a.startswith("-")
                and not (i > 0 and args[i - 1] == "-d")]
    png = screen_png(ctx.state)
    if operands:
        try:
            ctx.state.fs.write(ctx.path(operands[0]), png)
        except FsError as exc:
            return await ctx.fail(f"Error opening file: {operands[0]} ({exc})")
        return 0
    await ctx.out(png)
    return 0


@command("wm")
async def cmd_wm(ctx: Ctx, args: list[str]) -> int:
    if args[:1] == ["size"]:
        await ctx.out(f"Physical size: {SCREEN_WIDTH}x{SCREEN_HEIGHT}\n")
    elif args[:1] == ["density"]:
        await ctx.out("Physical density: 160\n")
    else:
        return await ctx.fail("usage: wm [size|density]", 255)
    return 0


@command("input")
async def cmd_input(ctx: Ctx, args: list[str]) -> int:
    if args[:1] == ["-d"]:
        args = args[2:]
    if args and args[0] in ("touchscreen", "keyboard", "mouse", "touchpad", "dpad", "stylus"):
        args = args[1:]
    if not args:
        return await ctx.fail("usage: input [tap|swipe|text|keyevent] ...", 1)
    sub, rest = args[0], args[1:]
    needed = {"tap": 2, "swipe": 4, "draganddrop": 4, "text": 1, "keyevent": 1, "press": 0}
    if sub not in needed:
        await ctx.err(f"Error: Unknown command: {sub}\n")
        return 1
    if len(rest) < needed[sub] or (sub in ("tap", "swipe", "draganddrop")
                                   and not all(_is_number(a) for a in rest)):
        await ctx.err(f"Error: Invalid arguments for command: {sub}\n")
        return 1
    if ctx.state.should_fail():
        await ctx.err("java.lang.SecurityException: Injecting input events failed "
                      "(sim: injected failure)\n")
        return 1
    if sub in ("swipe", "draganddrop") and len(rest) >= 5:
        await asyncio.sleep(min(float(rest[4]), 10_000.0) / 1000)
    if sub == "keyevent" and any(k in _KEY_HOME for k in rest):
        ctx.state.foreground = None
    ctx.state.input_events += 1
    return 0


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@command("settings")
async def cmd_settings(ctx: Ctx, args: list[str]) -> int:
    settings = ctx.state.settings
    if len(args) >= 3 and args[0] == "get":
        await ctx.out(settings.get(args[2], "null") + "\n")
    elif len(args) >= 4 and args[0] == "put":
        settings[args[2]] = args[3]
    elif len(args) >= 2 and args[0] == "list":
        await ctx.out("".join(f"{k}={v}\n" for k, v in sorted(settings.items())))
    else:
        return await ctx.fail("usage: settings [get|put|list] NAMESPACE KEY [VALUE]", 255)
    return 0


@command("logcat")
async def cmd_logcat(ctx: Ctx, args: list[str]) -> int:
    log = ctx.state.log
    if "-c" in args or "--clear" in args:
        log.clear()
        return 0
    style = args[args.index("-v") + 1] if "-v" in args[:-1] else "threadtime"
    tail = int(args[args.index("-t") + 1]) if "-t" in args[:-1] else None
    entries = log.since(0)
    if tail is not None:
        entries = entries[-tail:]
    if entries:
        await ctx.out("".join(e.format(style) + "\n" for e in entries))
    if "-d" in args or tail is not None:
        return 0
    # Stream until the reader closes the stream (the service task is then cancelled).
    seen = log.last_seq
    quiet_since = time.monotonic()
    while True:
        await asyncio.sleep(_LOGCAT_POLL_S)
        fresh = log.since(seen)
        if not fresh and time.monotonic() - quiet_since >= _LOGCAT_HEARTBEAT_S:
            level = ctx.state.battery.snapshot().level
            log.add("D", "SimHeartbeat", f"alive battery={level}%", pid=1234)
            fresh = log.since(seen)
        if fresh:
            seen = fresh[-1].seq
            quiet_since = time.monotonic()
            await ctx.out("".join(e.format(style) + "\n" for e in fresh))


@command("reboot")
async def cmd_reboot(ctx: Ctx, args: list[str]) -> int:
    ctx.state.request_reboot()
    return 0
