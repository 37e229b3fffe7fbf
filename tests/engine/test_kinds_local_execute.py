"""local.execute for real: argv programs, the reference's output merge and cap, exit
codes, and that a timeout or a cancel leaves no process of the group behind."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from app.engine.kinds.base import PermanentError
from app.engine.kinds.local_kinds import (
    LocalExecuteKind,
    ProcessExitError,
    ProcessTimeoutError,
    group_has_live_members,
)
from tests.engine.kindctx import KindTestContext

KIND = LocalExecuteKind()


async def execute(tmp_path: Path, **payload: Any) -> dict[str, Any]:
    ctx = KindTestContext(tmp_path / "artifacts", kind=KIND.name)
    return await KIND.run(ctx, KIND.validate(payload))


def live_members(pgid: int) -> list[int]:
    """Non-zombie processes of group ``pgid`` (this container's PID 1 reaps nothing)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path("/proc", name, "stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            pids.append(int(name))
    return pids


async def wait_for_pid(pidfile: Path) -> int:
    for _ in range(200):
        if pidfile.exists() and pidfile.read_text().strip():
            return int(pidfile.read_text().split()[0])
        await asyncio.sleep(0.02)
    raise AssertionError("the child never wrote its pid")


@pytest.mark.asyncio
async def test_stdout_and_exit_code(tmp_path: Path) -> None:
    result = await execute(tmp_path, argv=["sh", "-c", "echo hello; echo world"])
    assert result == {"exit_code": 0, "output": "hello\nworld\n", "omitted_bytes": 0}


@pytest.mark.asyncio
async def test_argv_is_never_a_shell_string(tmp_path: Path) -> None:
    result = await execute(tmp_path, argv=["echo", "$HOME;", "`id`", "*"])
    assert result["output"] == "$HOME; `id` *\n"


@pytest.mark.asyncio
async def test_stderr_is_merged_after_stdout_with_the_reference_separator(
    tmp_path: Path,
) -> None:
    result = await execute(tmp_path, argv=["sh", "-c", "echo err >&2; printf out"])
    assert result["output"] == "out\n--- STDERR ---\nerr\n"
    only_err = await execute(tmp_path, argv=["sh", "-c", "echo err >&2"])
    assert only_err["output"] == "--- STDERR ---\nerr\n"


@pytest.mark.asyncio
async def test_no_output_is_said_so(tmp_path: Path) -> None:
    assert (await execute(tmp_path, argv=["true"]))["output"] == "(No Output)"


@pytest.mark.asyncio
async def test_nonzero_exit_fails_the_attempt_unless_check_is_off(tmp_path: Path) -> None:
    argv = ["sh", "-c", "echo partial; echo broken >&2; exit 3"]
    with pytest.raises(ProcessExitError) as info:
        await execute(tmp_path, argv=argv)
    text = str(info.value)
    assert "exited with code 3" in text and "broken" in text and "partial" in text
    result = await execute(tmp_path, argv=argv, check=False)
    assert result["exit_code"] == 3
    assert result["output"] == (
        "partial\n--- STDERR ---\nbroken\n[Process exited with code 3]"
    )


@pytest.mark.asyncio
async def test_output_is_capped_to_head_and_tail_with_an_exact_omitted_count(
    tmp_path: Path,
) -> None:
    script = "import sys; sys.stdout.write('A' * 500 + 'B' * 199000 + 'C' * 500)"
    result = await execute(tmp_path, argv=[sys.executable, "-c", script], output_limit=1000)
    assert result["omitted_bytes"] == 199000
    assert result["output"] == "A" * 500 + "\n[... 199000 bytes omitted ...]\n" + "C" * 500


@pytest.mark.asyncio
async def test_cap_spans_both_streams_and_keeps_one_marker(tmp_path: Path) -> None:
    script = (
        "import sys; sys.stdout.write('o' * 100000); sys.stdout.flush(); "
        "sys.stderr.write('e' * 99999 + 'E'); sys.exit(2)"
    )
    result = await execute(tmp_path, argv=[sys.executable, "-c", script], output_limit=600,
                           check=False)
    separator = "\n--- STDERR ---\n"
    total = 100000 + len(separator) + 100000
    assert result["omitted_bytes"] == total - 600
    assert result["output"].startswith("o" * 300 + f"\n[... {total - 600} bytes omitted ...]\n")
    assert result["output"].endswith("e" * 299 + "E\n[Process exited with code 2]")
    assert result["output"].count("omitted") == 1


@pytest.mark.asyncio
async def test_a_chatty_child_never_blocks_on_its_pipes(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "for _ in range(80):\n"
        "    sys.stdout.write('x' * 65536); sys.stderr.write('y' * 65536)\n"
    )
    started = time.monotonic()
    result = await execute(tmp_path, argv=[sys.executable, "-c", script], output_limit=4096)
    assert time.monotonic() - started < 10
    assert result["omitted_bytes"] == 2 * 80 * 65536 + len("\n--- STDERR ---\n") - 4096


@pytest.mark.asyncio
async def test_env_and_cwd(tmp_path: Path) -> None:
    result = await execute(tmp_path, argv=["sh", "-c", 'echo "$TD_X"; pwd; echo "$PATH"'],
                           env={"TD_X": "from payload"}, cwd=str(tmp_path))
    lines = result["output"].splitlines()
    assert lines[0] == "from payload" and lines[1] == str(tmp_path)
    assert lines[2] == os.environ["PATH"]  # extra variables add to the inherited environment


@pytest.mark.asyncio
async def test_missing_program_or_directory_is_permanent(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="cannot run 'no-such-program-xyz'"):
        await execute(tmp_path, argv=["no-such-program-xyz"])
    with pytest.raises(PermanentError, match="working directory not found"):
        await execute(tmp_path, argv=["true"], cwd=str(tmp_path / "missing"))


@pytest.mark.asyncio
async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    argv = ["sh", "-c", f"echo $$ > {pidfile}; echo before; sleep 30 & sleep 30"]
    task = asyncio.create_task(execute(tmp_path, argv=argv, timeout_s=1.0))
    pgid = await wait_for_pid(pidfile)
    for _ in range(100):  # sh, the background sleep and the foreground sleep
        if len(live_members(pgid)) >= 3:
            break
        await asyncio.sleep(0.02)
    members = live_members(pgid)
    assert len(members) >= 3, members
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError) as info:
        await task
    assert time.monotonic() - started < 2.0  # SIGTERM was enough: no 2 s grace wait
    assert "timed out after 1 s" in str(info.value) and "before" in str(info.value)
    assert live_members(pgid) == [] and not group_has_live_members(pgid)


@pytest.mark.asyncio
async def test_a_group_ignoring_sigterm_gets_sigkill_after_the_grace(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    argv = ["sh", "-c", f"trap '' TERM; echo $$ > {pidfile}; sleep 30 & sleep 30"]
    started = time.monotonic()
    task = asyncio.create_task(execute(tmp_path, argv=argv, timeout_s=0.5))
    pgid = await wait_for_pid(pidfile)
    with pytest.raises(ProcessTimeoutError):
        await task
    elapsed = time.monotonic() - started
    assert 2.4 <= elapsed < 5.0, elapsed  # timeout + 2 s grace, then SIGKILL
    assert live_members(pgid) == []


@pytest.mark.asyncio
async def test_cancel_kills_the_process_group_and_propagates(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    argv = ["sh", "-c", f"echo $$ > {pidfile}; sleep 30 & sleep 30"]
    task = asyncio.create_task(execute(tmp_path, argv=argv))
    pgid = await wait_for_pid(pidfile)
    await asyncio.sleep(0.1)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 2.0
    assert live_members(pgid) == []


@pytest.mark.asyncio
async def test_leftover_background_processes_end_with_the_task(tmp_path: Path) -> None:
    """A backgrounded child that keeps the output pipe open must not hang the task,
    and nothing of the task's group outlives it."""
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    result = await execute(tmp_path, argv=["sh", "-c", f"echo $$ > {pidfile}; sleep 30 & "
                                           "echo started"])
    assert result["output"] == "started\n"
    assert time.monotonic() - started < 3.0
    assert live_members(int(pidfile.read_text())) == []
