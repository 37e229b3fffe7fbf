"""Run a refresh at once, then at most a few times a second however often it is asked for.

Live summaries (device counts, status texts) follow engine events that arrive
up to 60 times a second under load; re-rendering them each time costs the
event loop more than anyone can read. :class:`Throttle` runs the first request
immediately and folds later ones into one trailing run per interval, so the
last state is always shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer


class Throttle(QObject):
    """``throttle()`` calls ``fn`` now, or once when ``interval_ms`` has passed since the
    last call if it ran less than that ago."""

    def __init__(self, interval_ms: int, fn: Callable[[], Any],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._fn = fn
        self._pending = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._on_timer_timeout)
        self.runs = 0

    def __call__(self) -> None:
        if self._timer.isActive():
            self._pending = True
            return
        self._run()

    def stop(self) -> None:
        """Drop a pending run (shutdown)."""
        self._pending = False
        self._timer.stop()

    def _run(self) -> None:
        self.runs += 1
        self._timer.start()
        self._fn()

    def _on_timer_timeout(self) -> None:
        if self._pending:
            self._pending = False
            self._run()
