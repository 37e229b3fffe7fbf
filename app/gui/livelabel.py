"""A label for text that changes all the time: live counts in headers and status bars.

Every ``QLabel.setText`` asks the parent layout to run again (``updateGeometry``),
and the request climbs to the main window: with phones busy that cost ~5 ms
several times a second, for a label whose size had not even changed. A widget
with a fixed size asks nothing, so :class:`LiveLabel` keeps a fixed size that
grows when a longer text needs it (one layout pass) and never shrinks while
live: a shorter text leaves some space instead of moving its neighbours.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QSize
from PySide6.QtWidgets import QLabel

_DIGITS_AS_ZERO = str.maketrans("123456789", "000000000")


class LiveLabel(QLabel):
    """A ``QLabel`` whose text changes often without re-laying out the window."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fit(shrink=True)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        old = self.text()
        if text == old:
            return
        super().setText(text)
        # Counts ticking over ("busy 9" -> "busy 8") keep the width: UI fonts draw
        # digits at one width. Measuring rich text lays out a document, which is
        # costly a few times a second under load, so only other changes measure.
        if text.translate(_DIGITS_AS_ZERO) != old.translate(_DIGITS_AS_ZERO):
            self._fit(shrink=False)

    def _fit(self, *, shrink: bool) -> None:
        hint = self.sizeHint()
        width = hint.width() if shrink else max(hint.width(), self.minimumWidth())
        target = QSize(width, hint.height())
        if self.minimumSize() != target or self.maximumSize() != target:
            self.setFixedSize(target)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._fit(shrink=True)  # new metrics: fit the text afresh
