"""Render the console over the simulated lab with real activity and save PNGs.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshots.py [--out docs/img]

Writes console.png (light), console-dark.png, history.png. Everything shown is
real: a 12-phone simulated lab, the real engine, tasks running and failing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtWidgets import QApplication  # noqa: E402

from app.core.enums import Priority  # noqa: E402
from app.core.paths import Paths  # noqa: E402
from app.core.targets import Target  # noqa: E402
from app.core.taskspec import TaskSpec  # noqa: E402
from app.gui.eventloop import BatchingQEventLoop  # noqa: E402


async def render(app: QApplication, out: Path, work: Path) -> None:
    from app.devices.adb import AdbProvider
    from app.devices.sim import SimLab
    from app.engine.config import EngineConfig
    from app.engine.engine import Engine
    from app.gui.mainwindow import MainWindow
    from app.gui.theme import apply_theme

    loop = asyncio.get_running_loop()
    lab = SimLab(12, work / "lab", seed=3)
    await loop.run_in_executor(None, lab.start)
    engine = Engine(paths=Paths(work / "data"), provider=AdbProvider(lab.adb_host, lab.adb_port),
                    config=EngineConfig(battery_interval_s=2.0))
    apply_theme(app, "light")
    window = MainWindow(engine, paths=Paths(work / "data"), demo=True)
    window.resize(1500, 940)
    window.show()
    await engine.start()
    window.engine_started()
    try:
        await engine.wait_until(lambda: len(engine.device_views()) == 12, timeout=20)
        serials = sorted(lab.serials)
        await engine.update_device(serials[0], nickname="bench-left", tags=["lab", "pixel"])
        await engine.update_device(serials[1], nickname="release-check", tags=["lab"])
        await engine.hold_device(serials[2], "alice", note="manual exploratory test")
        await engine.set_maintenance(serials[3], True, actor="alice")
        await loop.run_in_executor(None, lab.unplug, serials[4])
        # History first: quick work that finishes (and a few failures).
        quick = [TaskSpec(kind="demo.capture", payload={"steps": 2, "step_ms": 20},
                          source="gui", created_by="alice")] * 40
        failing = [TaskSpec(kind="adb.shell", payload={"command": "exit 3"},
                            max_attempts=1, source="cli", created_by="bob")] * 4
        await engine.submit_many(quick + failing)
        await asyncio.sleep(4)
        # Then long captures so tiles show progress, and a backlog in the queue.
        long = [TaskSpec(kind="demo.capture", payload={"steps": 30, "step_ms": 400},
                         source="gui", created_by="alice")] * 30
        await engine.submit_many(long)
        await engine.submit(TaskSpec(kind="adb.screenshot", priority=Priority.HIGH,
                                     target=Target.device(serials[2]), created_by="alice"))
        await asyncio.sleep(5)
        window.grab().save(str(out / "console.png"))
        window.history_dock.raise_()
        await asyncio.sleep(1.5)
        window.history.table.selectRow(12)  # a finished capture: its detail shows
        await asyncio.sleep(0.5)
        window.grab().save(str(out / "history.png"))
        window.queue_dock.raise_()
        apply_theme(app, "dark")
        await asyncio.sleep(1.0)
        window.grab().save(str(out / "console-dark.png"))
    finally:
        window.shutting_down()
        await engine.stop()
        await loop.run_in_executor(None, lab.stop)
        window.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "img")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    app = QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory(prefix="taskdesk-shots-") as tmp, \
            asyncio.Runner(loop_factory=lambda: BatchingQEventLoop(app)) as runner:
        runner.run(render(app, args.out, Path(tmp)))
    print(f"screenshots written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
