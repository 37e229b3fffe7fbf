"""The PyInstaller bundle: built from the spec, smoke-tested frozen, archived.

The end-to-end build is slow (about a minute to build, plus the smoke test) and runs
only with ``-m slow`` (CI: when TASKDESK_BUILD=1). The quick tests below it protect
the smoke test's own checks: a smoke test that could not fail would prove nothing.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
SIZE_LIMIT_MB = 200.0


@pytest.fixture(scope="module")
def pkg() -> Iterator[SimpleNamespace]:
    """packaging/build.py, smoke.py and strace_audit.py (scripts, not a package)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(PACKAGING))
        yield SimpleNamespace(build=_load("build"), smoke=_load("smoke"),
                              strace_audit=_load("strace_audit"))


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, PACKAGING / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# -- the real thing -------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_bundle_builds_passes_its_smoke_test_and_is_archived(tmp_path: Path,
                                                             pkg: SimpleNamespace) -> None:
    """build.py end to end: the frozen console runs demo tasks on the simulated lab,
    finds its resources and the entry-point kind, writes nothing outside its sandbox,
    and the archive holds a runnable bundle under 200 MB."""
    report_path = tmp_path / "report.json"
    command = [sys.executable, str(PACKAGING / "build.py"), "--dist", str(tmp_path / "dist"),
               "--work", str(tmp_path / "work"), "--report", str(report_path)]
    if shutil.which("xvfb-run"):
        command.append("--xcb")
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1400)
    assert report_path.is_file(), proc.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert report["problems"] == [], report["problems"]
    assert proc.returncode == 0, proc.stderr[-3000:]

    bundle = tmp_path / "dist" / pkg.build.bundle_name(pkg.build.read_project())
    summary = report["smoke"]["summary"]
    assert summary["ok"] is True
    assert "lab.health_check" in summary["plugin_kinds"]
    assert Path(summary["icon"]).resolve().is_relative_to(bundle.resolve())
    assert summary["succeeded"] == summary["tasks"] > 0
    assert report["smoke"]["strace_used"] is (shutil.which("strace") is not None)
    assert report["smoke"]["cli_tasks_listed"] == summary["tasks"]
    assert report["bundle_mb"] < SIZE_LIMIT_MB

    with tarfile.open(report["archive"]) as tar:
        members = {member.name: member for member in tar.getmembers()}
    for program in ("taskdesk", "taskdesk-agent", "_internal/adbutils/binaries/adb"):
        member = members[f"{bundle.name}/{program}"]
        assert member.mode & 0o111, f"{program} lost its exec bit in the archive"


# -- the checks the smoke test relies on -----------------------------------------------------
def test_bundle_is_named_after_pyproject_and_platform(pkg: SimpleNamespace) -> None:
    project = pkg.build.read_project()
    name = pkg.build.bundle_name(project)
    assert name.startswith(f"taskdesk-{project['version']}-")
    system, machine = pkg.build.platform_tag().split("-", 1)
    assert system in {"linux", "windows", "macos"} and machine


def test_installed_metadata_carries_the_entry_point_kinds(pkg: SimpleNamespace) -> None:
    """The spec copies the installed metadata; it must match pyproject.toml."""
    assert pkg.build.stale_metadata(pkg.build.read_project()) == []


def test_stderr_classification_flags_what_must_fail_the_smoke_test(
        pkg: SimpleNamespace) -> None:
    stamp = "2026-01-01 10:00:00,000"
    clean = "\n".join([
        f"{stamp} INFO    app.engine: started",
        f"{stamp} WARNING qt: This plugin does not support propagateSizeHints()",
        f"{stamp} INFO    app.gui: a message",
        "that goes on for a second line",
    ])
    problems, allowed = pkg.smoke.classify_stderr(clean)
    assert problems == []
    assert allowed == ["qt: This plugin does not support propagateSizeHints()"]

    cases = {
        "traceback": f"{stamp} CRITICAL taskdesk.crash: unhandled exception:\n"
                     "Traceback (most recent call last):\n  File \"x.py\"\nKeyError: 1",
        "unknown Qt warning": f"{stamp} WARNING qt: QPainter::begin: Paint device returned "
                              "engine == 0",
        "error record": f"{stamp} ERROR   app.cli.serve: could not start the device side",
        "stray Qt line": "qt.qpa.plugin: Could not load the Qt platform plugin \"xcb\"",
        "bootloader": f"{stamp} WARNING qt: This plugin does not support "
                      "propagateSizeHints()\n[PYI-1:ERROR] Failed to execute script",
        "text after an allowed warning": f"{stamp} WARNING qt: This plugin does not support "
                                         "propagateSizeHints()\nQWidget: something else",
    }
    for label, stderr in cases.items():
        problems, _ = pkg.smoke.classify_stderr(stderr)
        assert problems, f"{label} was not flagged"


def test_summary_check_requires_plugin_kind_and_icon_inside_bundle(
        pkg: SimpleNamespace, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    good = {"ok": True, "plugin_kinds": ["lab.health_check"],
            "icon": str(bundle / "_internal" / "resources" / "icons" / "taskdesk.svg")}
    assert pkg.smoke.check_summary(good, bundle) == []
    assert pkg.smoke.check_summary({**good, "plugin_kinds": []}, bundle)
    assert pkg.smoke.check_summary({**good, "icon": str(ROOT / "resources" / "x.svg")},
                                   bundle)
    assert pkg.smoke.check_summary({**good, "ok": False}, bundle)
    assert pkg.smoke.check_summary({}, bundle) == ["no JSON summary on stdout"]
    stdout = 'log line\n{"not": "it"}\n' + json.dumps(good) + "\n"
    assert pkg.smoke.parse_summary(stdout) == good


def test_snapshot_diff_sees_a_changed_bundle(pkg: SimpleNamespace, tmp_path: Path) -> None:
    (tmp_path / "lib.so").write_bytes(b"x")
    before = pkg.smoke.snapshot(tmp_path)
    (tmp_path / "lib.so").write_bytes(b"xy")
    (tmp_path / "__pycache__").mkdir()
    changes = pkg.smoke.diff_snapshots(before, pkg.smoke.snapshot(tmp_path))
    assert changes == ["added __pycache__", "modified lib.so"]


@pytest.mark.skipif(not sys.platform.startswith("linux") or not shutil.which("strace"),
                    reason="the syscall audit needs strace (Linux)")
def test_strace_audit_catches_writes_outside_and_traffic_off_loopback(
        pkg: SimpleNamespace, tmp_path: Path) -> None:
    """A real traced process: inside writes pass, an outside write and a UDP connect
    to a documentation address (no packet is sent) are reported."""
    root, elsewhere = tmp_path / "sandbox", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    script = (
        "import os, socket\n"
        "open('inside.txt', 'w').write('ok')\n"
        "os.makedirs('home/.cache', exist_ok=True)\n"
        f"open({str(elsewhere / 'leak.txt')!r}, 'w').write('leak')\n"
        "open('/etc/hostname').read()\n"
        "unix = socket.socket(socket.AF_UNIX)\n"
        "unix.bind('inside.sock')\n"
        "udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "try:\n    udp.connect(('192.0.2.1', 9))\nexcept OSError:\n    pass\n"
        "loop = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "loop.connect(('127.0.0.1', 9))\n"
    )
    trace = tmp_path / "trace"
    subprocess.run(["strace", *pkg.strace_audit.STRACE_ARGS, "-o", str(trace), "--",
                    sys.executable, "-c", script], cwd=root, check=True, timeout=60)
    writes, traffic = pkg.strace_audit.audit(trace, root)
    assert [w.rsplit("/", 1)[-1] for w in writes] == ["leak.txt"], writes
    assert traffic == ["connect 192.0.2.1"]
