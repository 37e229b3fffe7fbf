"""Build the TaskDesk one-folder bundle, smoke-test the frozen binary, archive it.

Usage::

    python packaging/build.py            # build + smoke test + dist/<bundle>.tar.gz
    python packaging/build.py --help

Steps (each one fails the run with a message saying what is wrong):

1. check that the installed ``taskdesk`` metadata carries pyproject's entry points
   (the frozen app copies that metadata; a stale editable install would ship stale
   plugins);
2. ``pyinstaller --clean packaging/taskdesk.spec`` into a clean work directory;
3. check the bundle's layout (programs, resources, adb with its exec bit, Qt plugins);
4. smoke-test the frozen binary in a sandbox (packaging/smoke.py says what it checks);
5. write ``<dist>/taskdesk-<version>-<platform>.tar.gz``, unpack it elsewhere and run
   both programs from there; print sizes and times.

The spec imports :func:`read_project` and :func:`bundle_name` from here, so both
agree on the bundle's name. This module imports nothing outside the standard library
at import time (the tests import it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "packaging" / "taskdesk.spec"
EXE_SUFFIX = ".exe" if sys.platform == "win32" else ""
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)
EMBEDDED_ICONS = (".ico", ".icns")  # built into the programs, not copied as resources


# -- naming -------------------------------------------------------------------------------
def read_project(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, Any]:
    """The ``[project]`` table of pyproject.toml (name, version, entry points...)."""
    with pyproject.open("rb") as handle:
        project: dict[str, Any] = tomllib.load(handle)["project"]
    return project


def platform_tag() -> str:
    """``linux-x86_64``, ``windows-x86_64``, ``macos-arm64``...: OS and CPU of this build."""
    system = {"linux": "linux", "win32": "windows", "darwin": "macos"}.get(
        sys.platform, sys.platform)
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64"}.get(machine, machine)
    return f"{system}-{machine}"


def bundle_name(project: dict[str, Any]) -> str:
    """The one-folder bundle's (and the archive's) name: ``taskdesk-0.1.0-linux-x86_64``."""
    return f"{project['name']}-{project['version']}-{platform_tag()}"


# -- before the build ---------------------------------------------------------------------
def wanted_entry_points(project: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(group, name, value) for every entry point and script pyproject.toml declares."""
    wanted = {(group, name, value)
              for group, table in project.get("entry-points", {}).items()
              for name, value in table.items()}
    return wanted | {("console_scripts", name, value)
                     for name, value in project.get("scripts", {}).items()}


def stale_metadata(project: dict[str, Any]) -> list[str]:
    """Differences between pyproject.toml and the metadata the spec will copy.

    The spec copies the *installed* metadata into the bundle (that is what
    importlib.metadata reads when frozen). PyInstaller runs with the checkout on
    sys.path, so ``pip install -e``'s ``taskdesk.egg-info`` in the checkout wins over
    the site-packages dist-info; both are refreshed by re-running ``pip install -e .``.
    """
    from importlib.metadata import Distribution

    found = list(Distribution.discover(name=project["name"], path=[str(ROOT), *sys.path]))
    if not found:
        return [f"{project['name']} is not installed: run `pip install -e '.[package]'`"]
    dist = found[0]
    problems = []
    if dist.version != project["version"]:
        problems.append(f"installed version {dist.version} != pyproject {project['version']}")
    installed = {(ep.group, ep.name, ep.value) for ep in dist.entry_points}
    for group, name, value in sorted(wanted_entry_points(project) - installed):
        problems.append(f"entry point {group}:{name} = {value} is not in the installed "
                        "metadata: re-run `pip install -e '.[package]'`")
    return problems


def bundled_entry_points(internal: Path, dist_name: str) -> set[tuple[str, str, str]] | None:
    """Entry points in the bundle's copy of ``dist_name``'s metadata (None: no metadata)."""
    import configparser

    files = [*internal.glob(f"{dist_name}-*.dist-info/entry_points.txt"),
             *internal.glob(f"{dist_name}.egg-info/entry_points.txt")]
    if not files:
        return None
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep the case
    parser.read(files[0], encoding="utf-8")
    return {(group, name, value.strip())
            for group in parser.sections() for name, value in parser.items(group)}


def render_icons(svg: Path, out_dir: Path) -> list[Path]:
    """Render the SVG icon to PNG (Linux), ICO (Windows) and ICNS (macOS) with Qt + Pillow.

    The renders are checked in (resources/icons); run ``build.py --render-icons`` after
    changing the SVG.
    """
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - Qt needs it
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg} is not a valid SVG")
    renders: dict[int, Image.Image] = {}
    for size in ICON_SIZES:
        image = QImage(size, size, QImage.Format.Format_RGBA8888)  # Pillow's RGBA order
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        renderer.render(painter)
        painter.end()
        renders[size] = Image.frombuffer("RGBA", (size, size), bytes(image.constBits()),
                                         "raw", "RGBA", image.bytesPerLine(), 1).copy()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "taskdesk-256.png", out_dir / "taskdesk.ico", out_dir / "taskdesk.icns"]
    renders[256].save(written[0], optimize=True)
    ico_sizes = [s for s in ICON_SIZES if s <= 256]
    renders[256].save(written[1], sizes=[(s, s) for s in ico_sizes],
                      append_images=[renders[s] for s in ico_sizes])
    renders[1024].save(written[2], append_images=[renders[s] for s in ICON_SIZES])
    return written


# -- the build ------------------------------------------------------------------------------
def build_bundle(dist: Path, work: Path, project: dict[str, Any]) -> tuple[Path, float]:
    """Run PyInstaller on the spec from a clean work directory; return (bundle, seconds)."""
    bundle = dist / bundle_name(project)
    for stale in (work, bundle):
        shutil.rmtree(stale, ignore_errors=True)
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level=WARN",
         "--distpath", str(dist), "--workpath", str(work), str(SPEC)],
        cwd=ROOT, check=True)
    return bundle, time.monotonic() - started


def internal_dir(bundle: Path) -> Path:
    """Where PyInstaller puts libraries and data (``sys._MEIPASS``)."""
    return bundle / "_internal"


def check_layout(bundle: Path, project: dict[str, Any]) -> list[str]:
    """What a frozen TaskDesk needs at run time, checked on disk. Returns problems."""
    internal = internal_dir(bundle)
    qt_plugins = internal / "PySide6" / "Qt" / "plugins"
    problems = []
    for program in ("taskdesk", "taskdesk-agent"):
        path = bundle / f"{program}{EXE_SUFFIX}"
        if not path.is_file() or not os.access(path, os.X_OK):
            problems.append(f"program {path.name} missing or not executable")
    adb = internal / "adbutils" / "binaries" / f"adb{EXE_SUFFIX}"
    if not adb.is_file() or not os.access(adb, os.X_OK):
        problems.append(f"{adb.relative_to(bundle)} missing or without its exec bit (--demo)")
    for source in sorted((ROOT / "resources").rglob("*")):
        rel = source.relative_to(ROOT)
        if (source.is_file() and source.suffix not in EMBEDDED_ICONS
                and not (internal / rel).is_file()):
            problems.append(f"{rel.as_posix()} is not in the bundle: add a pattern for it "
                            "to RESOURCE_PATTERNS in taskdesk.spec")
    bundled = bundled_entry_points(internal, project["name"])
    if bundled is None:
        problems.append(f"no {project['name']} metadata in the bundle (entry-point kinds)")
    else:
        for group, name, value in sorted(wanted_entry_points(project) - bundled):
            problems.append(f"bundled metadata lacks entry point {group}:{name} = {value}")
    if bundled_entry_points(internal, "keyring") is None:
        problems.append("keyring dist-info missing (keyring finds its backends through it)")
    wanted_plugins = {  # name stem -> why
        "platforms/qoffscreen": "headless runs and the smoke test",
        "iconengines/qsvgicon": "the SVG window and action icons",
        "imageformats/qsvg": "SVG images",
    }
    if sys.platform.startswith("linux"):
        wanted_plugins["platforms/qxcb"] = "X11 desktops"
    for stem, why in wanted_plugins.items():
        folder, name = stem.split("/")
        if not any(name in p.name for p in (qt_plugins / folder).glob("*")):
            problems.append(f"Qt plugin {stem} missing ({why})")
    for link in bundle.rglob("*"):
        if link.is_symlink() and not link.exists():
            problems.append(f"dangling link {link.relative_to(bundle)}")
    if any("gtk3" in p.name for p in (qt_plugins / "platformthemes").glob("*")):
        problems.append("the gtk3 platform theme was not trimmed")
    return problems


# -- the archive and the numbers ------------------------------------------------------------
def tree_size(path: Path) -> int:
    """Bytes in regular files under ``path`` (symlinks not followed, not counted twice)."""
    if path.is_symlink():
        return 0  # its target is counted where it lives
    if path.is_file():
        return path.stat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def largest_parts(bundle: Path, count: int = 15) -> list[tuple[str, int]]:
    """The biggest entries two levels down (``_internal/<x>`` and the programs)."""
    internal = internal_dir(bundle)
    entries = [p for p in bundle.iterdir() if p != internal] + list(internal.iterdir())
    sized = [(str(p.relative_to(bundle)), tree_size(p)) for p in entries]
    return sorted(sized, key=lambda item: item[1], reverse=True)[:count]


def write_archive(bundle: Path, dist: Path) -> Path:
    """``<dist>/<bundle>.tar.gz`` with the bundle folder at its top (exec bits kept)."""
    archive = dist / f"{bundle.name}.tar.gz"
    archive.unlink(missing_ok=True)
    with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname=bundle.name)
    return archive


def check_archive(archive: Path, name: str, version: str) -> list[str]:
    """Unpack the archive elsewhere and run the programs from there.

    Proves the archive keeps exec bits and Qt's library links, and that the bundle
    does not depend on where it was built.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="taskdesk-unpacked-") as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="tar")
        problems = []
        # Windows: the windowed taskdesk.exe has no stdout; its console twin answers.
        cli = "taskdesk-cli" if sys.platform == "win32" else "taskdesk"
        for program, prog_name in ((cli, "taskdesk"), ("taskdesk-agent", "taskdesk-agent")):
            exe = Path(tmp) / name / f"{program}{EXE_SUFFIX}"
            proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True,
                                  timeout=60)
            if proc.returncode != 0 or proc.stdout.strip() != f"{prog_name} {version}":
                problems.append(f"unpacked {program} --version: exit {proc.returncode}, "
                                f"{proc.stdout.strip()!r} {proc.stderr.strip()[-300:]!r}")
        broken = [str(p.relative_to(tmp)) for p in Path(tmp).rglob("*")
                  if p.is_symlink() and not p.exists()]
        problems += [f"unpacked archive has a dangling link {link}" for link in broken]
    return problems


# -- main -----------------------------------------------------------------------------------
@dataclass
class BuildReport:
    """What one run measured; written as JSON with ``--report``."""

    bundle: str = ""
    build_seconds: float = 0.0
    bundle_mb: float = 0.0
    archive: str = ""
    archive_mb: float = 0.0
    largest: list[tuple[str, float]] = field(default_factory=list)
    smoke: dict[str, Any] = field(default_factory=dict)
    smoke_xcb: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="build.py",
        description="Build the TaskDesk one-folder bundle with PyInstaller, smoke-test the "
                    "frozen binary offscreen in a sandbox, and archive it as .tar.gz.")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist",
                        help="where the bundle and the archive go (default: dist/)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller",
                        help="PyInstaller's work directory, emptied first (default: "
                             "build/pyinstaller)")
    parser.add_argument("--skip-build", action="store_true",
                        help="smoke-test and archive the bundle already in --dist")
    parser.add_argument("--no-archive", action="store_true", help="do not write the .tar.gz")
    parser.add_argument("--no-strace", action="store_true",
                        help="skip the syscall audit of writes outside the sandbox (Linux)")
    parser.add_argument("--xcb", action="store_true",
                        help="also run the self-test on the xcb platform under xvfb-run "
                             "(proves the X11 plugin and its libraries load)")
    parser.add_argument("--keep-sandbox", action="store_true",
                        help="keep the smoke test's temporary data dir and HOME")
    parser.add_argument("--report", type=Path, help="also write the measurements as JSON")
    parser.add_argument("--render-icons", action="store_true",
                        help="only re-render resources/icons/taskdesk-256.png, .ico, .icns "
                             "from taskdesk.svg, then exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render_icons:
        for path in render_icons(ROOT / "resources" / "icons" / "taskdesk.svg",
                                 ROOT / "resources" / "icons"):
            print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import smoke  # packaging/smoke.py: the frozen-binary smoke test

    project = read_project()
    report = BuildReport(bundle=bundle_name(project))
    dist = args.dist.resolve()
    bundle = dist / report.bundle
    if not args.skip_build:
        report.problems += stale_metadata(project)
        if report.problems:
            return _finish(report, args.report)
        bundle, report.build_seconds = build_bundle(dist, args.work.resolve(), project)
        print(f"built {bundle} in {report.build_seconds:.1f} s", flush=True)
    if not bundle.is_dir():
        report.problems.append(f"no bundle at {bundle}")
        return _finish(report, args.report)
    report.problems += check_layout(bundle, project)
    result = smoke.run_smoke_test(bundle, project["version"], use_strace=not args.no_strace,
                                  keep_sandbox=args.keep_sandbox)
    report.smoke = asdict(result)
    report.problems += result.problems
    if args.xcb:
        on_x11 = smoke.run_smoke_test(bundle, project["version"], platform="xcb",
                                      keep_sandbox=args.keep_sandbox)
        report.smoke_xcb = asdict(on_x11)
        report.problems += [f"[xcb] {problem}" for problem in on_x11.problems]
    report.bundle_mb = round(tree_size(bundle) / 1e6, 1)
    report.largest = [(name, round(size / 1e6, 1)) for name, size in largest_parts(bundle)]
    if not args.no_archive and not report.problems:
        archive = write_archive(bundle, dist)
        report.archive, report.archive_mb = str(archive), round(archive.stat().st_size / 1e6, 1)
        report.problems += check_archive(archive, bundle.name, project["version"])
    return _finish(report, args.report)


def _finish(report: BuildReport, path: Path | None) -> int:
    for run in (report.smoke, report.smoke_xcb):
        if run:
            print(f"smoke test ({run['platform']}): {run['seconds']:.1f} s, exit "
                  f"{run['exit_code']}, summary {json.dumps(run['summary'])}")
    if report.bundle_mb:
        print(f"bundle: {report.bundle_mb} MB unpacked; largest parts:")
        for name, size in report.largest:
            print(f"  {size:8.1f} MB  {name}")
    if report.archive:
        print(f"archive: {report.archive} ({report.archive_mb} MB)")
    if report.build_seconds:
        print(f"build time: {report.build_seconds:.1f} s")
    if path is not None:
        path.write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    for problem in report.problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    print("FAILED" if report.problems else "OK")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
