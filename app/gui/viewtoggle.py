"""A checkable tool button that shows plainly which of its group is on.

Fusion draws a checked tool button one shade darker than an unchecked one. On the
light palette that reads as "pressed"; on the dark palette the darker shade sinks
into the window and the *unchecked* button, drawn raised, looked like the chosen
one. This button paints its checked state in the palette's highlight colours, in
both themes, and follows a theme switch.
"""

from __future__ import annotations

from PySide6.QtGui import QAction, QPalette
from PySide6.QtWidgets import QApplication, QToolButton, QWidget

from app.gui.theme import theme_notifier


class ViewToggleButton(QToolButton):
    def __init__(self, action: QAction, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDefaultAction(action)
        action.toggled.connect(self._restyle)
        theme_notifier().theme_changed.connect(self._restyle)
        self._restyle()

    def _restyle(self, *_: object) -> None:
        palette = QPalette(QApplication.palette())
        if self.isChecked():
            for role, source in ((QPalette.ColorRole.Button, QPalette.ColorRole.Highlight),
                                 (QPalette.ColorRole.ButtonText,
                                  QPalette.ColorRole.HighlightedText)):
                palette.setColor(role, palette.color(source))
        self.setPalette(palette)
