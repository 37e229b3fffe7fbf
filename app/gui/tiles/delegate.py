"""Paints one device tile: state band, names, battery, task, progress, result.

Everything is drawn with ``QPainter`` from palette-derived colours (see
:mod:`app.gui.theme`); the only non-ASCII characters are listed in
:data:`GLYPHS`, all present in DejaVu Sans, so no tile ever shows a glyph box.
"""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from app.gui.theme import (
    blend,
    legible_on,
    secondary_text,
    state_accent_colors,
    state_colors,
    status_colors,
)
from app.gui.tiles.model import DeviceTile, TileRole, format_elapsed

TILE_WIDTH = 240
TILE_MIN_HEIGHT = 120
MARGIN = 3  # gap between neighbouring tiles
BAND = 6  # width of the state colour band
PAD = 8
RADIUS = 6.0
BAR_HEIGHT = 7

CHARGING_MARK = "\u26a1"  # high voltage sign
SEPARATOR = "\u00b7"  # middle dot
RESULT_MARKS = {"success": "\u2713", "failure": "\u2717"}  # check mark, ballot x
OTHER_RESULT_MARK = "\u2013"  # en dash
GLYPHS = CHARGING_MARK + SEPARATOR + "".join(RESULT_MARKS.values()) + OTHER_RESULT_MARK + "\u2026"

STATE_LABELS = {
    "idle": "Idle", "busy": "Busy", "held": "Held", "maintenance": "Maintenance",
    "offline": "Offline", "unauthorized": "Unauthorized", "absent": "Unplugged",
}
STATE_DETAILS = {
    "idle": "Ready for work",
    "busy": "Running",
    "held": "Held by an operator",
    "maintenance": "Out of the pool",
    "offline": "adb reports the phone offline",
    "unauthorized": "Allow USB debugging on phone",
    "absent": "Not connected",
}
_RESULT_STATUS = {"success": "SUCCESS", "succeeded": "SUCCESS", "failure": "FAILURE",
                  "failed": "FAILURE", "dead": "FAILURE", "revoked": "REVOKED",
                  "cancelled": "REVOKED"}

ModelIndex = QModelIndex | QPersistentModelIndex


class _Colours:
    """Colours for one palette, computed once per palette change."""

    def __init__(self, palette: QPalette) -> None:
        self.key = palette.cacheKey()
        self.text = palette.color(QPalette.ColorRole.Text)
        self.tint = state_colors(palette)
        self.accent = state_accent_colors(palette)
        self.caption = {state: secondary_text(palette, tint) for state, tint in self.tint.items()}
        self.status = status_colors(palette)
        self.highlight = palette.color(QPalette.ColorRole.Highlight)
        self.border = palette.color(QPalette.ColorRole.Mid)

    def result_colour(self, result: str, state: str) -> QColor:
        status = _RESULT_STATUS.get(result.lower(), "PENDING")
        return legible_on(self.status[status], (self.tint[state],), self.text)


class TileDelegate(QStyledItemDelegate):
    """Paints :class:`DeviceTile` rows of a :class:`DeviceTileModel` as tiles."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._colours: _Colours | None = None
        self._thumbnails: OrderedDict[tuple[str, int], QPixmap] = OrderedDict()
        self._fonts: dict[str, _Fonts] = {}

    def tile_size(self, font: QFont) -> QSize:
        """About 240x120; taller when the font needs it, so no line is clipped."""
        fonts = self._fonts_for(font)
        content = (PAD + fonts.title_h + fonts.small_h + 3 + fonts.body_h + 4 + BAR_HEIGHT + 3
                   + fonts.small_h + 2 + fonts.small_h + PAD)
        return QSize(TILE_WIDTH, max(TILE_MIN_HEIGHT, content + 2 * MARGIN))

    def sizeHint(self, option: QStyleOptionViewItem, index: ModelIndex) -> QSize:
        return self.tile_size(option.font)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        tile = index.data(TileRole.TILE)
        if not isinstance(tile, DeviceTile):
            return
        palette: QPalette = option.palette
        if self._colours is None or self._colours.key != palette.cacheKey():
            self._colours = _Colours(palette)
        state = option.state
        elapsed = index.data(TileRole.ELAPSED)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self._paint_tile(
            painter, option.rect, tile, self._colours, self._fonts_for(option.font),
            selected=bool(state & QStyle.StateFlag.State_Selected),
            hovered=bool(state & QStyle.StateFlag.State_MouseOver),
            elapsed=elapsed if isinstance(elapsed, float) else None,
        )
        painter.restore()

    # -- painting -----------------------------------------------------------------

    def _paint_tile(
        self,
        painter: QPainter,
        cell: QRect,
        tile: DeviceTile,
        colours: _Colours,
        fonts: _Fonts,
        *,
        selected: bool,
        hovered: bool,
        elapsed: float | None,
    ) -> None:
        box = QRectF(cell.adjusted(MARGIN, MARGIN, -MARGIN, -MARGIN))
        tint = colours.tint[tile.state]
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(tint)
        painter.drawRoundedRect(box, RADIUS, RADIUS)
        # The band: clip a rounded rect so its left corners follow the tile's.
        painter.save()
        painter.setClipRect(QRectF(box.left(), box.top(), BAND, box.height()))
        painter.setBrush(colours.accent[tile.state])
        painter.drawRoundedRect(box, RADIUS, RADIUS)
        painter.restore()
        if selected:
            border = QPen(colours.highlight, 2.5)
        elif hovered:
            border = QPen(blend(colours.border, colours.text, 0.4), 1.2)
        else:
            border = QPen(colours.border, 1.0)
        painter.setPen(border)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(box.adjusted(0.5, 0.5, -0.5, -0.5), RADIUS, RADIUS)

        left = int(box.left()) + BAND + PAD
        right = int(box.right()) - PAD
        top = int(box.top()) + PAD
        caption = colours.caption[tile.state]

        # Row 1: title, battery on the right.
        battery_w = self._paint_battery(painter, tile, colours, fonts, right, top)
        painter.setFont(fonts.title)
        painter.setPen(colours.text)
        width = right - left - battery_w - (6 if battery_w else 0)
        _text(painter, fonts.title, left, top, width, fonts.title_h, tile.title)
        top += fonts.title_h

        # Row 2: model and serial, state label on the right.
        painter.setFont(fonts.small_bold)
        label = STATE_LABELS[tile.state]
        label_w = fonts.small_bold_m.horizontalAdvance(label)
        dot = fonts.small_h * 0.45
        label_x = right - label_w
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colours.accent[tile.state])
        painter.drawEllipse(QPointF(label_x - dot, top + fonts.small_h / 2), dot / 2, dot / 2)
        painter.setPen(colours.text)
        _text(painter, fonts.small_bold, label_x, top, label_w, fonts.small_h, label)
        if tile.title == tile.serial:
            subtitle = "model unknown"  # e.g. unauthorized: adb cannot probe it yet
        elif tile.nickname and tile.model:
            subtitle = f"{tile.model} {SEPARATOR} {tile.serial}"
        else:
            subtitle = tile.serial
        painter.setFont(fonts.small)
        painter.setPen(caption)
        _text(painter, fonts.small, left, top, int(label_x - 2 * dot - left - 4),
              fonts.small_h, subtitle)
        top += fonts.small_h + 3

        # Thumbnail on the right of the lower rows, when there is one.
        pixmap = self._thumbnail(tile)
        if pixmap is not None:
            height = int(box.bottom()) - PAD - top
            scaled = pixmap.scaledToHeight(height, Qt.TransformationMode.SmoothTransformation)
            if scaled.width() > 60:
                scaled = pixmap.scaledToWidth(60, Qt.TransformationMode.SmoothTransformation)
            painter.drawPixmap(right - scaled.width(), top, scaled)
            right -= scaled.width() + 6

        # Row 3: task (or what the state means) and the elapsed time.
        painter.setFont(fonts.body)
        painter.setPen(colours.text)
        if tile.task_kind:
            clock = format_elapsed(elapsed) if tile.state == "busy" else ""
            clock_w = fonts.body_m.horizontalAdvance(clock) if clock else 0
            if clock:
                _text(painter, fonts.body, right - clock_w, top, clock_w, fonts.body_h, clock)
            _text(painter, fonts.body, left, top, right - left - clock_w - 6, fonts.body_h,
                  tile.task_kind)
        else:
            painter.setPen(caption)
            _text(painter, fonts.body, left, top, right - left, fonts.body_h,
                  STATE_DETAILS[tile.state])
        top += fonts.body_h + 4

        # Row 4: progress bar with its percentage.
        if tile.task_kind and tile.state == "busy":
            percent_text = "" if tile.progress_percent is None else f"{tile.progress_percent}%"
            text_w = fonts.small_m.horizontalAdvance("100%")
            bar = QRectF(left, top, right - left - text_w - 6, BAR_HEIGHT)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(blend(tint, colours.text, 0.15))
            painter.drawRoundedRect(bar, 3, 3)
            if tile.progress_percent is not None:
                fraction = min(100, max(0, tile.progress_percent)) / 100.0
                painter.setBrush(colours.accent["busy"])
                painter.drawRoundedRect(QRectF(bar.left(), bar.top(), bar.width() * fraction,
                                               BAR_HEIGHT), 3, 3)
            painter.setPen(colours.text)
            painter.setFont(fonts.small)
            _text(painter, fonts.small, right - text_w, top + BAR_HEIGHT / 2 - fonts.small_h / 2,
                  text_w, fonts.small_h, percent_text, Qt.AlignmentFlag.AlignRight)
        top += BAR_HEIGHT + 3

        # Row 5: step and message.
        detail = ": ".join(p for p in (tile.progress_step, tile.progress_message) if p)
        if detail and tile.task_kind:
            painter.setFont(fonts.small)
            painter.setPen(caption)
            _text(painter, fonts.small, left, top, right - left, fonts.small_h, detail)
        top += fonts.small_h + 2

        # Row 6: last result on the left, tags on the right.
        used = 0
        if tile.last_result:
            mark = RESULT_MARKS.get(tile.last_result.lower(), OTHER_RESULT_MARK)
            text = f"{mark} {tile.last_result}"
            painter.setFont(fonts.small)
            painter.setPen(colours.result_colour(tile.last_result, tile.state))
            used = min(fonts.small_m.horizontalAdvance(text), (right - left) // 2)
            _text(painter, fonts.small, left, top, used, fonts.small_h, text)
        if tile.tags:
            painter.setFont(fonts.small)
            painter.setPen(caption)
            tags = " ".join(f"#{tag}" for tag in tile.tags)
            start = left + used + (8 if used else 0)
            _text(painter, fonts.small, start, top, right - start, fonts.small_h, tags,
                  Qt.AlignmentFlag.AlignRight)

    def _paint_battery(
        self, painter: QPainter, tile: DeviceTile, colours: _Colours, fonts: _Fonts,
        right: int, top: int,
    ) -> int:
        """Draw "⚡ 87% [icon]" right-aligned; return the width used."""
        if tile.battery_level is None:
            return 0
        level = min(100, max(0, tile.battery_level))
        icon_w, icon_h = 18, 9
        y = top + (fonts.title_h - icon_h) / 2
        body = QRectF(right - icon_w - 2, y, icon_w, icon_h)
        painter.setPen(QPen(colours.text, 1.0))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(body, 1.5, 1.5)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colours.text)
        painter.drawRect(QRectF(body.right(), y + 2.5, 2, icon_h - 5))
        fill = ("unauthorized" if level < 20 else "maintenance" if level < 50 else "idle")
        painter.setBrush(colours.accent[fill])
        painter.drawRect(QRectF(body.left() + 2, y + 2, (icon_w - 4) * level / 100, icon_h - 4))
        text = f"{CHARGING_MARK} {level}%" if tile.charging else f"{level}%"
        text_w = fonts.small_m.horizontalAdvance(text)
        painter.setFont(fonts.small)
        painter.setPen(colours.text)
        x = int(body.left()) - 4 - text_w
        _text(painter, fonts.small, x, top, text_w, fonts.title_h, text)
        return right - x

    def _fonts_for(self, font: QFont) -> _Fonts:
        fonts = self._fonts.get(font.key())
        if fonts is None:
            fonts = self._fonts[font.key()] = _Fonts(font)
        return fonts

    def _thumbnail(self, tile: DeviceTile) -> QPixmap | None:
        if not tile.thumbnail:
            return None
        key = (tile.serial, hash(tile.thumbnail))
        pixmap = self._thumbnails.get(key)
        if pixmap is None:
            pixmap = QPixmap()
            if not pixmap.loadFromData(tile.thumbnail):
                return None
            self._thumbnails[key] = pixmap
            while len(self._thumbnails) > 256:
                self._thumbnails.popitem(last=False)
        else:
            self._thumbnails.move_to_end(key)
        return pixmap


class _Fonts:
    """The tile's fonts and their metrics, derived from the view's font."""

    def __init__(self, base: QFont) -> None:
        self.body = QFont(base)
        self.title = QFont(base)
        self.title.setBold(True)
        self.title.setPointSizeF(base.pointSizeF() + 1)
        self.small = QFont(base)
        self.small.setPointSizeF(max(7.0, base.pointSizeF() - 1))
        self.small_bold = QFont(self.small)
        self.small_bold.setBold(True)
        self.body_m = QFontMetrics(self.body)
        self.small_m = QFontMetrics(self.small)
        self.small_bold_m = QFontMetrics(self.small_bold)
        self.body_h = self.body_m.height()
        self.title_h = QFontMetrics(self.title).height()
        self.small_h = self.small_m.height()


def _text(
    painter: QPainter, font: QFont, x: float, y: float, width: float, height: float, text: str,
    align: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignLeft,
) -> None:
    """Draw one line, elided with "…" when it does not fit."""
    if width <= 0 or not text:
        return
    metrics = QFontMetrics(font)
    # elidedText() also shortens text that fits exactly; measure first.
    elided = text if metrics.horizontalAdvance(text) <= width else metrics.elidedText(
        text, Qt.TextElideMode.ElideRight, int(width)
    )
    painter.drawText(QRectF(x, y, width, height), int(align | Qt.AlignmentFlag.AlignVCenter),
                     elided)
