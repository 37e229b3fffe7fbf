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
