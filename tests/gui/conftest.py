"""Qt fixtures shared by the GUI tests: themes, paint counting, saved grabs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QWidget

from app.gui.theme import apply_theme


@pytest.fixture
def themed(qapp: QApplication) -> Iterator[object]:
    """Apply a theme for one test with ``themed("dark")``; light is restored after."""

    def use(mode: str) -> None:
        apply_theme(qapp, mode)

    yield use
    apply_theme(qapp, "light")


class PaintCounter(QObject):
    """Counts paint events reaching a widget (views paint on their viewport)."""

    def __init__(self, widget: QWidget) -> None:
        super().__init__(widget)
        self.count = 0
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Paint:
            self.count += 1
        return False


@pytest.fixture
def grab_dir(tmp_path: Path) -> Path:
    """Where grabs go: ``TASKDESK_SAVE_GRABS`` (e.g. docs/img) when set, else tmp_path."""
    target = os.environ.get("TASKDESK_SAVE_GRABS")
    path = Path(target) if target else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path


# -- a real engine in the qasync loop, for pane and window tests --------------------------
# Pattern (environment notes, "Testing Qt with asyncio"): sync tests, a qasync loop
# marked already_running, and qtbot.waitUntil to let Qt (and so asyncio) run. Never
# call qtbot waits inside an ``async def`` test, and never loop.stop() this loop.

import asyncio  # noqa: E402
from collections.abc import Coroutine  # noqa: E402
from typing import Any  # noqa: E402


@pytest.fixture
def qt_loop(qapp: QApplication) -> Iterator[asyncio.AbstractEventLoop]:
    from app.gui.eventloop import BatchingQEventLoop

    loop = BatchingQEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.set_event_loop(None)
    # already_running marked it as this thread's running loop; tests that follow
    # (asyncio.run, pytest-asyncio) must not find it there.
    asyncio.events._set_running_loop(None)


def run_async(qtbot: Any, coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
    """Run ``coro`` on the qasync loop by spinning Qt until it is done; returns its result."""
    future = asyncio.ensure_future(coro)
    qtbot.waitUntil(future.done, timeout=int(timeout * 1000))
    return future.result()


@pytest.fixture(scope="module")
def gui_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Six simulated phones behind a private adb server (shared by a module's tests)."""
    from app.devices.sim import SimLab

    lab = SimLab(6, tmp_path_factory.mktemp("guilab"), seed=5)
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def gui_engine(qt_loop: asyncio.AbstractEventLoop, qtbot: Any, gui_lab: Any,
               tmp_path: Path) -> Iterator[Any]:
    """A started engine over ``gui_lab``; every phone idle when the test begins."""
    from app.core.paths import Paths
    from app.devices.adb import AdbProvider
    from app.engine.config import EngineConfig
    from app.engine.engine import Engine

    engine = Engine(paths=Paths(tmp_path / "data"),
                    provider=AdbProvider(gui_lab.adb_host, gui_lab.adb_port),
                    config=EngineConfig(lease_s=10.0, device_lost_grace_s=1.0,
                                        battery_interval_s=3600.0, external_poll_s=0.2))
    run_async(qtbot, engine.start())
    qtbot.waitUntil(lambda: sum(v.dispatch == "idle" for v in engine.device_views())
                    == len(gui_lab.serials), timeout=15000)
    try:
        yield engine
    finally:
        run_async(qtbot, engine.stop())
