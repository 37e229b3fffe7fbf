"""Generic toybox-style commands of the simulated shell (files, text, time).

Messages and exit codes follow Android's toybox where it matters to callers
(``cat: X: No such file or directory`` and status 1, ``false`` is 1, ...).
"""

from __future__ import annotations

import asyncio
import re
import stat
import time

from app.devices.sim.fs import FsError
from app.devices.sim.shell import COMMANDS, Ctx, ExitShellError, ShellRuntime, command


def _flags(args: list[str], known: str) -> tuple[set[str], list[str]]:
    """Split ``-abc`` style flags (letters in ``known``) from operands."""
    flags: set[str] = set()
    rest: list[str] = []
    for index, arg in enumerate(args):
        if arg == "--":
            rest.extend(args[index + 1 :])
            break
        if arg.startswith("-") and len(arg) > 1 and all(ch in known for ch in arg[1:]):
            flags.update(arg[1:])
        else:
            rest.append(arg)
    return flags, rest


@command("true")
async def cmd_true(ctx: Ctx, args: list[str]) -> int:
    return 0


@command("false")
async def cmd_false(ctx: Ctx, args: list[str]) -> int:
    return 1


@command("exit")
async def cmd_exit(ctx: Ctx, args: list[str]) -> int:
    try:
        status = int(args[0]) if args else ctx.runtime.last_status
    except ValueError:
        return await ctx.fail(f"{args[0]}: bad number", 2)
    raise ExitShellError(status)


@command("echo")
async def cmd_echo(ctx: Ctx, args: list[str]) -> int:
    newline = True
    escapes = False
    while args and args[0] in ("-n", "-e", "-ne", "-en"):
        newline = newline and "n" not in args[0]
        escapes = escapes or "e" in args[0]
        args = args[1:]
    text = " ".join(args)
    if escapes:
        text = text.encode().decode("unicode_escape")
    await ctx.out(text + ("\n" if newline else ""))
    return 0


@command("sleep")
async def cmd_sleep(ctx: Ctx, args: list[str]) -> int:
    if not args:
        return await ctx.fail("Needs 1 argument")
    try:
        seconds = float(args[0].rstrip("s"))
    except ValueError:
        return await ctx.fail(f"invalid number '{args[0]}'")
    await asyncio.sleep(max(0.0, seconds))
    return 0


@command("id")
async def cmd_id(ctx: Ctx, args: list[str]) -> int:
    if "-u" in args:
        await ctx.out("2000\n")
    else:
        await ctx.out(
            "uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log),"
            "1011(adb),1015(sdcard_rw),1028(sdcard_r),3003(inet) context=u:r:shell:s0\n"
        )
    return 0


@command("whoami")
async def cmd_whoami(ctx: Ctx, args: list[str]) -> int:
    await ctx.out("shell\n")
    return 0


@command("pwd")
async def cmd_pwd(ctx: Ctx, args: list[str]) -> int:
    await ctx.out(ctx.runtime.cwd + "\n")
    return 0


@command("cd")
async def cmd_cd(ctx: Ctx, args: list[str]) -> int:
    target = ctx.path(args[0] if args else "/")
    node = ctx.state.fs.stat(target)
    if node is None or not node.is_dir:
        return await ctx.fail(f"{args[0] if args else '/'}: No such file or directory", 2)
    ctx.runtime.cwd = target
    return 0


@command("which")
async def cmd_which(ctx: Ctx, args: list[str]) -> int:
    status = 0
    for name in args:
        if name in COMMANDS:
            await ctx.out(f"/system/bin/{name}\n")
        else:
            status = 1
    return status


@command("date")
async def cmd_date(ctx: Ctx, args: list[str]) -> int:
    fmt = next((a[1:] for a in args if a.startswith("+")), "%a %b %d %H:%M:%S %Z %Y")
    await ctx.out(time.strftime(fmt, time.gmtime()).replace("GMT", "UTC") + "\n")
    return 0


@command("uptime")
async def cmd_uptime(ctx: Ctx, args: list[str]) -> int:
    up = int(time.time() - ctx.state.boot_time)
    await ctx.out(
        f" {time.strftime('%H:%M:%S', time.gmtime())} up {up // 86400} days, "
        f"{(up % 86400) // 3600:2d}:{(up % 3600) // 60:02d},  0 users,  "
        "load average: 0.42, 0.37, 0.30\n"
    )
    return 0


@command("df")
async def cmd_df(ctx: Ctx, args: list[str]) -> int:
    """A 64 GiB /data partition, 12 GiB used plus whatever was pushed to the phone."""
    total_k = 64 * 1024 * 1024
    used_k = 12 * 1024 * 1024 + ctx.state.fs.total_bytes() // 1024
    free_k = total_k - used_k
    await ctx.out("Filesystem          1K-blocks     Used Available Use% Mounted on\n"
                  f"/dev/block/dm-48 {total_k:>12} {used_k:>8} {free_k:>9} "
                  f"{used_k * 100 // total_k:>3}% /data\n")
    return 0


@command("cat")
async def cmd_cat(ctx: Ctx, args: list[str]) -> int:
    if not args:
        await ctx.out(await ctx.read_all_stdin())
        return 0
    status = 0
    for raw in args:
        if ctx.path(raw) == "/proc/uptime":  # generated, like the kernel's
            up = time.time() - ctx.state.boot_time
            await ctx.out(f"{up:.2f} {up * 1.6:.2f}\n")
            continue
        try:
            await ctx.out(ctx.state.fs.read(ctx.path(raw)))
        except FsError as exc:
            status = await ctx.fail(f"{raw}: {exc}")
    return status


@command("ls")
async def cmd_ls(ctx: Ctx, args: list[str]) -> int:
    flags, paths = _flags(args, "al1dRh")
    status = 0
    lines: list[str] = []
    for raw in paths or ["."]:
        try:
            entries = ctx.state.fs.listdir(ctx.path(raw))
        except FsError as exc:
            status = await ctx.fail(f"{raw}: {exc}")
            continue
        for name, node in entries:
            if "l" in flags:
                kind = "d" if node.is_dir else "-"
                perms = stat.filemode(node.mode)[1:]
                stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(node.mtime))
                lines.append(f"{kind}{perms} 1 shell shell {node.size:>8} {stamp} {name}")
            else:
                lines.append(name)
    if lines:
        await ctx.out("\n".join(lines) + "\n")
    return status


@command("rm")
async def cmd_rm(ctx: Ctx, args: list[str]) -> int:
    flags, paths = _flags(args, "rRfv")
    status = 0
    for raw in paths:
        try:
            ctx.state.fs.remove(ctx.path(raw), recursive=bool(flags & {"r", "R"}))
        except FsError as exc:
            if "f" in flags and str(exc) == "No such file or directory":
                continue
            status = await ctx.fail(f"{raw}: {exc}")
    return status


@command("mkdir")
async def cmd_mkdir(ctx: Ctx, args: list[str]) -> int:
    flags, paths = _flags(args, "p")
    status = 0
    for raw in paths:
        try:
            ctx.state.fs.mkdir(ctx.path(raw), parents="p" in flags)
        except FsError as exc:
            status = await ctx.fail(f"{raw}: {exc}")
    return status


@command("touch")
async def cmd_touch(ctx: Ctx, args: list[str]) -> int:
    for raw in args:
        path = ctx.path(raw)
        node = ctx.state.fs.stat(path)
        try:
            ctx.state.fs.write(path, node.data if node and node.data is not None else b"")
        except FsError as exc:
            return await ctx.fail(f"{raw}: {exc}")
    return 0


async def _input_text(ctx: Ctx, files: list[str]) -> tuple[str, int]:
    if not files:
        return (await ctx.read_all_stdin()).decode("utf-8", "replace"), 0
    chunks: list[str] = []
    status = 0
    for raw in files:
        try:
            chunks.append(ctx.state.fs.read(ctx.path(raw)).decode("utf-8", "replace"))
        except FsError as exc:
            status = await ctx.fail(f"{raw}: {exc}", 2)
    return "".join(chunks), status


@command("grep")
async def cmd_grep(ctx: Ctx, args: list[str]) -> int:
    flags, rest = _flags(args, "ivcqEFnw")
    if not rest:
        return await ctx.fail("no pattern", 2)
    pattern, files = rest[0], rest[1:]
    text, status = await _input_text(ctx, files)
    source = re.escape(pattern) if "F" in flags else pattern
    if "w" in flags:
        source = rf"\b(?:{source})\b"
    try:
        regex = re.compile(source, re.IGNORECASE if "i" in flags else 0)
    except re.error:
        regex = re.compile(re.escape(pattern), re.IGNORECASE if "i" in flags else 0)
    matched = [
        f"{n}:{line}" if "n" in flags else line
        for n, line in enumerate(text.splitlines(), 1)
        if bool(regex.search(line)) != ("v" in flags)
    ]
    if "c" in flags:
        await ctx.out(f"{len(matched)}\n")
    elif matched and "q" not in flags:
        await ctx.out("\n".join(matched) + "\n")
    return status or (0 if matched else 1)


def _count_arg(args: list[str], default: int) -> tuple[int, list[str]]:
    if len(args) >= 2 and args[0] == "-n":
        return int(args[1]), args[2:]
    if args and args[0].startswith("-") and args[0][1:].isdigit():
        return int(args[0][1:]), args[1:]
    return default, args


@command("head", "tail")
async def cmd_head_tail(ctx: Ctx, args: list[str]) -> int:
    try:
        count, files = _count_arg(args, 10)
    except ValueError:
        return await ctx.fail("bad count")
    text, status = await _input_text(ctx, files)
    lines = text.splitlines(keepends=True)
    chosen = lines[:count] if ctx.name == "head" else lines[-count:] if count else []
    await ctx.out("".join(chosen))
    return status


@command("wc")
async def cmd_wc(ctx: Ctx, args: list[str]) -> int:
    flags, files = _flags(args, "lwc")
    text, status = await _input_text(ctx, files)
    counts = {"l": text.count("\n"), "w": len(text.split()), "c": len(text.encode())}
    chosen = [str(counts[f]) for f in "lwc" if f in flags] or [
        str(counts["l"]), str(counts["w"]), str(counts["c"])
    ]
    await ctx.out(" ".join(chosen) + "\n")
    return status


@command("sh")
async def cmd_sh(ctx: Ctx, args: list[str]) -> int:
    """``sh -c 'COMMANDS'`` in a child shell (its ``exit`` ends only the child)."""
    if len(args) < 2 or args[0] != "-c":
        return await ctx.fail("only 'sh -c COMMAND' is supported on the sim", 2)
    child = ShellRuntime(ctx.state, ctx.stdout, ctx.stderr, ctx.stdin,
                         cwd=ctx.runtime.cwd)
    return await child.run(args[1])
