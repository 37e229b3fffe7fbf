"""Table cells painted in one call each: text, a colour, and optionally a progress bar.

``QStyledItemDelegate`` asks a Python model for seven roles per cell and lays
the text out afresh on every paint: ~130 us a cell, so a queue table of 10
rows x 11 columns took ~15 ms to repaint, several times a second while phones
finish tasks and rows move up. :class:`CellDelegate` asks the model for one
:data:`Cell` per cell and draws lines laid out once (``QStaticText``, kept per
text and width): ~25 us a cell, looking the same (Fusion's selection, text
margins, eliding and focus frame). The progress column shows the fraction done
as a bar behind its text, legible and elided inside a fixed-height row in both
palettes.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPointF,
    QRect,
    Qt,
)
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPalette, QStaticText
from PySide6.QtWidgets import (
    QStyle,
    QStyledItemDelegate,
    QStyleOptionFocusRect,
    QStyleOptionViewItem,
    QWidget,
)

from app.gui.theme import blend

BAR_STRENGTH = 0.38  # how much of the highlight colour fills the done part
LINES_KEPT = 4096  # laid-out lines kept; the cache starts afresh past this

# (text, foreground colour or None for the palette's, right-aligned, percent or None)
Cell = tuple[str, QColor | None, bool, int | None]
CellSource = Callable[[int, int], Cell | None]

# Plain ints and members looked up once: enum arithmetic costs microseconds per cell.
_SELECTED = QStyle.StateFlag.State_Selected.value
_ACTIVE = QStyle.StateFlag.State_Active.value
_FOCUS = QStyle.StateFlag.State_HasFocus.value
_ENABLED = QStyle.StateFlag.State_Enabled.value
_DISABLED_GROUP = QPalette.ColorGroup.Disabled
_NORMAL_GROUP = QPalette.ColorGroup.Normal
_INACTIVE_GROUP = QPalette.ColorGroup.Inactive
_HIGHLIGHT = QPalette.ColorRole.Highlight
_HIGHLIGHTED_TEXT = QPalette.ColorRole.HighlightedText
_TEXT = QPalette.ColorRole.Text


class CellDelegate(QStyledItemDelegate):
    """Paints every cell of a view from ``source(row, column)``; cells the source does
    not describe (None) fall back to the standard delegate."""

    def __init__(self, source: CellSource, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._source = source
        self._lines: dict[tuple[str, int], tuple[QStaticText, int, int]] = {}
        self._pens: dict[tuple[int, QPalette.ColorGroup], tuple[QColor, QColor]] = {}
        self._margin: int | None = None
        if parent is not None:
            parent.installEventFilter(self)  # font and style changes void the kept lines

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        cell = self._source(index.row(), index.column())
        if cell is None:
            super().paint(painter, option, index)
            return
        text, colour, right, percent = cell
        rect: QRect = option.rect
        palette: QPalette = option.palette
        state = option.state.value
        group = (_DISABLED_GROUP if not state & _ENABLED
                 else _NORMAL_GROUP if state & _ACTIVE else _INACTIVE_GROUP)
        selected = bool(state & _SELECTED)
        if selected:
            painter.fillRect(rect, palette.brush(group, _HIGHLIGHT))
        if percent is not None:
            self._paint_bar(painter, rect, palette, group, percent, selected=selected)
        if text:
            pens = self._pens.get((palette.cacheKey(), group))
            if pens is None:
                pens = self._pens[(palette.cacheKey(), group)] = (
                    palette.color(group, _TEXT), palette.color(group, _HIGHLIGHTED_TEXT))
            painter.setPen(pens[1] if selected else colour if colour is not None else pens[0])
            margin = self._margin if self._margin is not None else self._text_margin(option)
            width = rect.width() - 2 * margin
            if percent is not None:
                margin, width = margin + 4, width - 8  # inside the bar
            if width > 0:
                line = self._lines.get((text, width))
                if line is None:
                    line = self._lay_out(option.fontMetrics, text, width)
                x = rect.left() + margin + (width - line[1] if right else 0)
                y = rect.top() + (rect.height() - line[2]) // 2
                painter.drawStaticText(QPointF(x, y), line[0])
        if state & _FOCUS:
            self._paint_focus(painter, option, palette, group, selected=selected)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._lines.clear()
            self._margin = None
        return False

    @staticmethod
    def fill_colour(palette: QPalette) -> tuple[QColor, QColor]:
        """(bar colour, text colour) of an unselected progress cell, for contrast checks."""
        base = palette.color(QPalette.ColorRole.Base)
        return (blend(base, palette.color(QPalette.ColorRole.Highlight), BAR_STRENGTH),
                palette.color(QPalette.ColorRole.Text))

    # -- helpers ------------------------------------------------------------------------
    def _paint_bar(self, painter: QPainter, rect: QRect, palette: QPalette,
                   group: QPalette.ColorGroup, percent: int, *, selected: bool) -> None:
        role = QPalette.ColorRole
        base = palette.color(group, role.Highlight if selected else role.Base)
        groove = blend(base, palette.color(group, role.Text), 0.08)
        fill = blend(base, palette.color(group, role.HighlightedText if selected
                                         else role.Highlight), BAR_STRENGTH)
        bar = rect.adjusted(2, 3, -2, -3)
        painter.fillRect(bar, groove)
        done = QRect(bar)
        done.setWidth(int(bar.width() * max(0, min(100, percent)) / 100))
        painter.fillRect(done, fill)

    def _paint_focus(self, painter: QPainter, option: QStyleOptionViewItem, palette: QPalette,
                     group: QPalette.ColorGroup, *, selected: bool) -> None:
        focus = QStyleOptionFocusRect()
        focus.rect = option.rect
        focus.state = option.state | QStyle.StateFlag.State_KeyboardFocusChange
        focus.state |= QStyle.StateFlag.State_Item
        focus.palette = palette
        focus.backgroundColor = palette.color(
            group, QPalette.ColorRole.Highlight if selected else QPalette.ColorRole.Window)
        widget = option.widget
        style = widget.style() if widget is not None else None
        if style is not None:
            style.drawPrimitive(QStyle.PrimitiveElement.PE_FrameFocusRect, focus, painter,
                                widget)

    def _text_margin(self, option: QStyleOptionViewItem) -> int:
        if self._margin is None:
            widget = option.widget
            style = widget.style() if widget is not None else None
            hmargin = style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None,
                                        widget) if style is not None else 2
            self._margin = hmargin + 1  # as QCommonStyle lays out item text
        return self._margin

    def _lay_out(self, metrics: QFontMetrics, text: str,
                 width: int) -> tuple[QStaticText, int, int]:
        """``text`` elided to ``width``, laid out once: (line, its advance, its height)."""
        # elidedText() also shortens text that fits exactly; measure first.
        shown = text if metrics.horizontalAdvance(text) <= width else metrics.elidedText(
            text, Qt.TextElideMode.ElideRight, width)
        static = QStaticText(shown)
        static.setTextFormat(Qt.TextFormat.PlainText)
        if len(self._lines) >= LINES_KEPT:
            self._lines.clear()
        line = self._lines[(text, width)] = (static, metrics.horizontalAdvance(shown),
                                             metrics.height())
        return line
