"""A table cell that shows progress as a bar behind its text.

Painted by hand (not a QProgressBar style control) so the message stays
legible and elided inside a fixed-height row in both palettes.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QRect, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from app.gui.theme import blend

BAR_STRENGTH = 0.38  # how much of the highlight colour fills the done part


class ProgressDelegate(QStyledItemDelegate):
    """Draws the fraction done (from ``percent_role``) behind the cell's text."""

    def __init__(self, percent_role: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._role = percent_role

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        percent = index.data(self._role)
        if not isinstance(percent, int):
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        palette: QPalette = opt.palette
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        painter.save()
        rect = opt.rect.adjusted(2, 3, -2, -3)
        base = palette.color(QPalette.ColorRole.Highlight if selected else QPalette.ColorRole.Base)
        groove = blend(base, palette.color(QPalette.ColorRole.Text), 0.08)
        fill = blend(base, palette.color(QPalette.ColorRole.Highlight if not selected
                                         else QPalette.ColorRole.HighlightedText), BAR_STRENGTH)
        if selected:
            painter.fillRect(opt.rect, palette.color(QPalette.ColorRole.Highlight))
        painter.fillRect(rect, groove)
        done = QRect(rect)
        done.setWidth(int(rect.width() * max(0, min(100, percent)) / 100))
        painter.fillRect(done, fill)
        text_colour = palette.color(QPalette.ColorRole.HighlightedText if selected
                                    else QPalette.ColorRole.Text)
        painter.setPen(text_colour)
        text_rect = rect.adjusted(4, 0, -4, 0)
        text = opt.fontMetrics.elidedText(opt.text, Qt.TextElideMode.ElideRight,
                                          text_rect.width())
        painter.drawText(text_rect, int(Qt.AlignmentFlag.AlignVCenter
                                        | Qt.AlignmentFlag.AlignLeft), text)
        painter.restore()

    @staticmethod
    def fill_colour(palette: QPalette) -> tuple[QColor, QColor]:
        """(bar colour, text colour) of an unselected cell, for contrast checks."""
        base = palette.color(QPalette.ColorRole.Base)
        return (blend(base, palette.color(QPalette.ColorRole.Highlight), BAR_STRENGTH),
                palette.color(QPalette.ColorRole.Text))
