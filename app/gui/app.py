"""The console's composition root: logging, Qt, the single-instance guard, the
engine in the qasync loop, and an orderly shutdown.

Order (STYLE.md #2): arguments and paths are resolved by the caller; here we set
up logging and the excepthook, create the QApplication, then run ``main()`` in
``asyncio.Runner(loop_factory=BatchingQEventLoop)`` (qasync's
loop, app.gui.eventloop). ``main()`` starts the engine,
shows the window, awaits the "app closing" event set from ``aboutToQuit`` and
then shuts the engine down (running tasks go back to the queue).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from typing import Any

from PySide6.QtCore import QtMsgType, qInstallMessageHandler
from PySide6.QtWidgets import QApplication

from app import __version__
from app.core.heap import settle_heap
from app.core.paths import Paths
from app.logsetup import setup_logging

log = logging.getLogger(__name__)
qt_log = logging.getLogger("qt")

_QT_LEVELS = {
    QtMsgType.QtDebugMsg: logging.DEBUG,
    QtMsgType.QtInfoMsg: logging.INFO,
    QtMsgType.QtWarningMsg: logging.WARNING,
    QtMsgType.QtCriticalMsg: logging.ERROR,
    QtMsgType.QtFatalMsg: logging.CRITICAL,
}


# Harmless platform-plugin notices (the offscreen plugin cannot resize native windows).
_QT_NOISE = ("propagateSizeHints",)


def _qt_message(msg_type: QtMsgType, context: Any, message: str) -> None:
    if any(noise in message for noise in _QT_NOISE):
        return
    qt_log.log(_QT_LEVELS.get(msg_type, logging.WARNING), "%s", message)


def run_console(args: argparse.Namespace, paths: Paths) -> int:
    """Open the console; returns the process exit code."""
    from app.gui.crash import install_excepthook
    from app.gui.eventloop import BatchingQEventLoop
    from app.gui.single import SingleInstance

    paths.ensure()
    setup_logging(paths.logs, args.log_level, stderr=True)
    qInstallMessageHandler(_qt_message)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("TaskDesk")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("TaskDesk")
    app.setDesktopFileName("taskdesk")
    guard = SingleInstance(paths.data_dir)
    if not guard.acquire():
        print("TaskDesk is already running on this data directory; raised its window.")
        return 0
    install_excepthook(paths.logs)
    started = time.perf_counter()
    with asyncio.Runner(loop_factory=lambda: BatchingQEventLoop(app)) as runner:
        code = runner.run(_main(app, args, paths, guard, started))
    guard.release()
    return code


async def _main(app: QApplication, args: argparse.Namespace, paths: Paths, guard: Any,
                started: float) -> int:
    from app.cli.serve import LabRuntime, stored_config
    from app.engine.engine import Engine
    from app.gui.mainwindow import MainWindow
    from app.gui.settings_store import load_gui_settings
    from app.gui.theme import apply_theme

    closing = asyncio.Event()
    app.aboutToQuit.connect(closing.set)
    app.setQuitOnLastWindowClosed(False)
    settings = load_gui_settings(paths)
    apply_theme(app, settings.theme)
    loop = asyncio.get_running_loop()
    engine = Engine(paths=paths, provider=None, database=args.database,
                    config=stored_config(args, paths, args.database))
    window = MainWindow(engine, paths=paths, demo=args.demo)
    guard.raise_requested.connect(window.bring_to_front)
    window.close_requested.connect(closing.set)
    window.show()
    log.info("main window visible after %.0f ms", (time.perf_counter() - started) * 1000)
    runtime = LabRuntime(args, paths)
    exit_code = 0
    try:
        try:
            engine.provider = await loop.run_in_executor(None, runtime.start)
        except Exception as exc:  # the console still opens: history, queue, settings work
            log.error("could not start the device side: %s", exc)
            window.bridge.error.emit(f"devices unavailable: {exc}")
        await engine.start()
        window.engine_started()
        settle_heap()  # app.core.heap
        if args.self_test:
            exit_code = await window.self_test()
            closing.set()
        await closing.wait()
    finally:
        window.shutting_down()
        await engine.stop()
        await loop.run_in_executor(None, runtime.stop)
        window.hide()
    return exit_code

