"""The command line as an operator uses it: clear errors with non-zero exit codes,
nothing stored on bad input, and readable or JSON output."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.procs import run_cli


def test_bad_input_gets_a_clear_error_and_stores_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cases = [
        (["task", "add", "no.such_kind"], "unknown task kind"),
        (["task", "add", "adb.shell", "--payload", "{not json"], "not valid JSON"),
        (["task", "add", "adb.shell", "--payload", "{}"], "command"),
        (["task", "add", "adb.shell", "--payload", '{"command": "x"}', "--priority",
          "urgent"], "priority"),
        (["task", "add", "adb.shell", "--payload", '{"command": "x"}', "--target",
          "nowhere"], "invalid target"),
    ]
    for args, message in cases:
        proc = run_cli(*args, data_dir=data, check=False)
        assert proc.returncode != 0, args
        assert message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    listed = json.loads(run_cli("task", "list", "--state", "pending", "--json",
                                data_dir=data).stdout)
    assert listed == []


def test_tasks_can_be_added_listed_cancelled_and_found_in_history(tmp_path: Path) -> None:
    data = tmp_path / "data"
    uid = run_cli("task", "add", "adb.shell", "--payload", '{"command": "echo hi"}',
                  "--priority", "high", data_dir=data).stdout.strip()
    listed = json.loads(run_cli("task", "list", "--json", data_dir=data).stdout)
    assert [t["id"] for t in listed] == [uid] and listed[0]["priority"] == "high"
    assert "cancelled" in run_cli("task", "cancel", uid, data_dir=data).stdout
    retried = run_cli("task", "retry", uid, data_dir=data).stdout.strip()
    assert retried and retried != uid
    stats = json.loads(run_cli("history", "--stats", "--json", data_dir=data).stdout)
    assert stats["total"] == 0  # nothing ran: no engine was started
    table = run_cli("task", "list", data_dir=data).stdout
    assert retried in table and "adb.shell" in table


def test_doctor_reports_the_lab_and_fails_without_an_adb_server(tmp_path: Path) -> None:
    from app.devices.sim import SimLab
    from tests.cli.procs import free_port

    data = tmp_path / "data"
    lab = SimLab(3, tmp_path / "lab", seed=2)
    lab.start()
    try:
        lab.set_unauthorized(lab.serials[0], True)
        lab.wait_for_states({lab.serials[0]: "unauthorized"})
        proc = run_cli("doctor", "--adb-port", str(lab.adb_port), "--json", data_dir=data)
        report = json.loads(proc.stdout)
        assert report["adb"]["alive"] and report["adb"]["version"] > 0
        assert len(report["adb"]["devices"]["online"]) == 2
        assert report["adb"]["devices"]["unauthorized"] == [lab.serials[0]]
        assert "Allow USB debugging" in report["adb"]["hint"]
        assert report["store"]["schema_version"] >= 1
    finally:
        lab.stop()
    dead = run_cli("doctor", "--adb-port", str(free_port()), data_dir=data, check=False)
    assert dead.returncode == 1 and "FAIL" in dead.stdout and "hint" in dead.stdout
