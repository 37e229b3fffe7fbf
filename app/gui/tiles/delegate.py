"""Paints one device tile: state band, names, battery, task, progress, result.

Everything is drawn with ``QPainter`` from palette-derived colours (see
:mod:`app.gui.theme`); the only non-ASCII characters are listed in
:data:`GLYPHS`, all present in DejaVu Sans, so no tile ever shows a glyph box.

Painting a tile from scratch costs ~0.8 ms (a dozen antialiased shapes and
texts), and a wall of busy phones changes all the time, so tiles are painted
from two caches of pixmaps:

* the whole tile, keyed by everything it shows except its running clock: a
  repaint of an unchanged tile (its clock ticking, hover, scrolling, a
  neighbour changing) is one ``drawPixmap`` plus the clock's text;
* the tile's frame (background, state band, border, name, battery, state
  label), keyed by those: a phone flipping between idle and busy finds both
  frames cached, so a changed tile costs only its task, progress and result
  lines (~0.25 ms).

A paint renders at most :data:`RENDER_BUDGET` changed tiles; other changed
tiles keep their previous image for that paint and are listed in
:attr:`TileDelegate.deferred`, for the view to repaint them next. So one paint
never holds the event loop for long, even when every tile on screen changed.
"""

from __future__ import annotations

from collections import Counter, OrderedDict

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPalette, QPen, QPixmap, QRegion
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from app.gui.theme import (
    blend,
    legible_on,
    secondary_text,
    state_accent_colors,
    state_colors,
    status_colors,
)
from app.gui.tiles.cache import Fonts, PixmapCache
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

RENDER_BUDGET = 6  # tiles rendered afresh per paint (~0.25 ms each); the rest next paint
TILE_CACHE_BYTES = 32 * 1024 * 1024  # whole tiles (~270 tiles at 1x, ~65 at 2x)
FRAME_CACHE_BYTES = 32 * 1024 * 1024  # frames, about two a phone (idle and busy)


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
        self._results: dict[tuple[str, str], QColor] = {}

    def result_colour(self, result: str, state: str) -> QColor:
        colour = self._results.get((result, state))
        if colour is None:
            status = _RESULT_STATUS.get(result.lower(), "PENDING")
            colour = legible_on(self.status[status], (self.tint[state],), self.text)
            self._results[(result, state)] = colour
        return colour


class TileDelegate(QStyledItemDelegate):
    """Paints :class:`DeviceTile` rows of a :class:`DeviceTileModel` as tiles."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._colours: _Colours | None = None
        self._thumbnails: OrderedDict[tuple[str, int], QPixmap] = OrderedDict()
        self._fonts: dict[str, Fonts] = {}
        self._tiles = PixmapCache(TILE_CACHE_BYTES)  # serial -> (tile, (key, clock box))
        self._frames = PixmapCache(FRAME_CACHE_BYTES)  # frame key -> (frame, None)
        self.paints: Counter[str] = Counter()  # paint() calls per serial
        self.renders: Counter[str] = Counter()  # tiles rendered afresh, per serial
        self.frame_renders: Counter[str] = Counter()  # frames rendered afresh, per serial
        self.budget: int | None = None  # renders left in this paint (None: no limit)
        self.deferred: list[ModelIndex] = []  # tiles shown with their previous image
        self._region: QRegion | None = None  # what this paint updates (None: everything)
        self.tile_width = TILE_WIDTH  # the view widens tiles so a row fills its width

    def begin_paint(self, budget: int | None = RENDER_BUDGET,
                    region: QRegion | None = None) -> None:
        """Start a paint of the view: at most ``budget`` tiles are rendered afresh, and
        tiles outside ``region`` are skipped (the view asks for every tile in the
        bounding box of what changed, e.g. two tiles at opposite corners)."""
        self.budget = budget
        self.deferred = []
        self._region = region

    def tile_size(self, font: QFont) -> QSize:
        """About 240x120 (wider to fill a row, see ``tile_width``); taller when the
        font needs it, so no line is clipped."""
        fonts = self._fonts_for(font)
        content = (PAD + fonts.title.height + fonts.small.height + 3 + fonts.body.height + 4
                   + BAR_HEIGHT + 3 + fonts.small.height + 2 + fonts.small.height + PAD)
        return QSize(self.tile_width, max(TILE_MIN_HEIGHT, content + 2 * MARGIN))

    def sizeHint(self, option: QStyleOptionViewItem, index: ModelIndex) -> QSize:
        return self.tile_size(option.font)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        if self._region is not None and not self._region.intersects(option.rect):
            return  # clipped away anyway
        tile = index.data(TileRole.TILE)
        if not isinstance(tile, DeviceTile):
            return
        palette: QPalette = option.palette
        if self._colours is None or self._colours.key != palette.cacheKey():
            self._colours = _Colours(palette)
        colours = self._colours
        fonts = self._fonts_for(option.font)
        state = option.state
        selected = bool(state & QStyle.StateFlag.State_Selected)
        hovered = bool(state & QStyle.StateFlag.State_MouseOver)
        clock = ""
        if tile.task_kind and tile.state == "busy":
            elapsed = index.data(TileRole.ELAPSED)
            clock = format_elapsed(elapsed if isinstance(elapsed, float) else None)
        clock_w = fonts.body.advance(clock) if clock else 0
        cell: QRect = option.rect
        device = painter.device()
        ratio = device.devicePixelRatioF() if device is not None else 1.0
        key = (tile, cell.width(), cell.height(), selected, hovered, clock_w, colours.key,
               fonts.key, ratio)
        self.paints[tile.serial] += 1
        cached = self._tiles.get(tile.serial)
        if cached is not None and cached[1][0] == key:
            pixmap, clock_box = cached[0], cached[1][1]
        elif cached is not None and self.budget is not None and self.budget <= 0:
            pixmap, clock_box = cached[0], cached[1][1]  # its previous image, this once
            self.deferred.append(QPersistentModelIndex(index))
        else:
            if self.budget is not None:
                self.budget -= 1
            pixmap, clock_box = self._render(tile, cell, colours, fonts, palette, ratio,
                                             selected=selected, hovered=hovered,
                                             clock_w=clock_w)
            self._tiles.put(tile.serial, pixmap, (key, clock_box))
        painter.drawPixmap(cell.topLeft(), pixmap)
        if clock:
            painter.save()
            painter.setFont(fonts.body.font)
            painter.setPen(colours.text)
            box = clock_box.translated(cell.left(), cell.top())
            fonts.body.draw(painter, box.left(), box.top(), box.width(), box.height(), clock)
            painter.restore()

    def forget(self) -> None:
        """Drop every cached pixmap; tiles are rendered afresh on their next paint."""
        self._tiles.clear()
        self._frames.clear()

    # -- rendering cache ------------------------------------------------------------

    def _render(
        self, tile: DeviceTile, cell: QRect, colours: _Colours, fonts: Fonts,
        palette: QPalette, ratio: float, *, selected: bool, hovered: bool, clock_w: int,
    ) -> tuple[QPixmap, QRectF]:
        """The tile without its clock, on the view's background; and the clock's box."""
        self.renders[tile.serial] += 1
        local = QRect(0, 0, cell.width(), cell.height())
        frame_key = (tile.serial, tile.state, tile.title, tile.nickname, tile.model,
                     tile.battery_level, tile.charging, selected, hovered, local.width(),
                     local.height(), colours.key, fonts.key, ratio)
        cached = self._frames.get(frame_key)
        if cached is None:
            self.frame_renders[tile.serial] += 1
            frame = QPixmap(max(1, round(cell.width() * ratio)),
                            max(1, round(cell.height() * ratio)))
            frame.setDevicePixelRatio(ratio)
            frame.fill(palette.color(QPalette.ColorRole.Base))
            painter = QPainter(frame)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            self._paint_frame(painter, local, tile, colours, fonts, selected=selected,
                              hovered=hovered)
            painter.end()
            self._frames.put(frame_key, frame)
        else:
            frame = cached[0]
        pixmap = frame.copy()
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        clock_box = self._paint_body(painter, local, tile, colours, fonts, clock_w=clock_w)
        painter.end()
        return pixmap, clock_box

    # -- painting -----------------------------------------------------------------

    def _paint_frame(
        self, painter: QPainter, cell: QRect, tile: DeviceTile, colours: _Colours,
        fonts: Fonts, *, selected: bool, hovered: bool,
    ) -> None:
        """The parts that change rarely: background, band, border, name, battery, state."""
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
        painter.setFont(fonts.title.font)
        painter.setPen(colours.text)
        width = right - left - battery_w - (6 if battery_w else 0)
        fonts.title.draw(painter, left, top, width, fonts.title.height, tile.title)
        top += fonts.title.height

        # Row 2: model and serial, state label on the right.
        painter.setFont(fonts.small_bold.font)
        label = STATE_LABELS[tile.state]
        label_w = fonts.small_bold.advance(label)
        dot = fonts.small.height * 0.45
        label_x = right - label_w
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colours.accent[tile.state])
        painter.drawEllipse(QPointF(label_x - dot, top + fonts.small.height / 2), dot / 2, dot / 2)
        painter.setPen(colours.text)
        fonts.small_bold.draw(painter, label_x, top, label_w, fonts.small.height, label)
        if tile.title == tile.serial:
            subtitle = "model unknown"  # e.g. unauthorized: adb cannot probe it yet
        elif tile.nickname and tile.model:
            subtitle = f"{tile.model} {SEPARATOR} {tile.serial}"
        else:
            subtitle = tile.serial
        painter.setFont(fonts.small.font)
        painter.setPen(caption)
        fonts.small.draw(painter, left, top, int(label_x - 2 * dot - left - 4),
                         fonts.small.height, subtitle)

    def _paint_body(
        self, painter: QPainter, cell: QRect, tile: DeviceTile, colours: _Colours,
        fonts: Fonts, *, clock_w: int,
    ) -> QRectF:
        """The lines under the frame: task, progress, detail, last result and tags.
        Returns the box the running clock goes in (painted over the cached tile)."""
        box = QRectF(cell.adjusted(MARGIN, MARGIN, -MARGIN, -MARGIN))
        tint = colours.tint[tile.state]
        caption = colours.caption[tile.state]
        left = int(box.left()) + BAND + PAD
        right = int(box.right()) - PAD
        top = int(box.top()) + PAD + fonts.title.height + fonts.small.height + 3

        # Thumbnail on the right of the lower rows, when there is one.
        pixmap = self._thumbnail(tile)
        if pixmap is not None:
            height = int(box.bottom()) - PAD - top
            scaled = pixmap.scaledToHeight(height, Qt.TransformationMode.SmoothTransformation)
            if scaled.width() > 60:
                scaled = pixmap.scaledToWidth(60, Qt.TransformationMode.SmoothTransformation)
            painter.drawPixmap(right - scaled.width(), top, scaled)
            right -= scaled.width() + 6

        # Row 3: task (or what the state means); the elapsed time is painted over it.
        painter.setFont(fonts.body.font)
        painter.setPen(colours.text)
        clock_box = QRectF(right - clock_w, top, clock_w, fonts.body.height)
        if tile.task_kind:
            fonts.body.draw(painter, left, top, right - left - clock_w - 6, fonts.body.height,
                            tile.task_kind)
        else:
            painter.setPen(caption)
            fonts.body.draw(painter, left, top, right - left, fonts.body.height,
                            STATE_DETAILS[tile.state])
        top += fonts.body.height + 4

        # Row 4: progress bar with its percentage.
        if tile.task_kind and tile.state == "busy":
            percent_text = "" if tile.progress_percent is None else f"{tile.progress_percent}%"
            text_w = fonts.small.advance("100%")
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
            painter.setFont(fonts.small.font)
            fonts.small.draw(painter, right - text_w,
                             top + BAR_HEIGHT / 2 - fonts.small.height / 2, text_w,
                             fonts.small.height, percent_text, right=True)
        top += BAR_HEIGHT + 3

        # Row 5: step and message.
        detail = ": ".join(p for p in (tile.progress_step, tile.progress_message) if p)
        if detail and tile.task_kind:
            painter.setFont(fonts.small.font)
            painter.setPen(caption)
            fonts.small.draw(painter, left, top, right - left, fonts.small.height, detail)
        top += fonts.small.height + 2

        # Row 6: last result on the left, tags on the right.
        used = 0
        if tile.last_result:
            mark = RESULT_MARKS.get(tile.last_result.lower(), OTHER_RESULT_MARK)
            text = f"{mark} {tile.last_result}"
            painter.setFont(fonts.small.font)
            painter.setPen(colours.result_colour(tile.last_result, tile.state))
            used = min(fonts.small.advance(text), (right - left) // 2)
            fonts.small.draw(painter, left, top, used, fonts.small.height, text)
        if tile.tags:
            painter.setFont(fonts.small.font)
            painter.setPen(caption)
            tags = " ".join(f"#{tag}" for tag in tile.tags)
            start = left + used + (8 if used else 0)
            fonts.small.draw(painter, start, top, right - start, fonts.small.height, tags,
                             right=True)
        return clock_box

    def _paint_battery(
        self, painter: QPainter, tile: DeviceTile, colours: _Colours, fonts: Fonts,
        right: int, top: int,
    ) -> int:
        """Draw "⚡ 87% [icon]" right-aligned; return the width used."""
        if tile.battery_level is None:
            return 0
        level = min(100, max(0, tile.battery_level))
        icon_w, icon_h = 18, 9
        y = top + (fonts.title.height - icon_h) / 2
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
        text_w = fonts.small.advance(text)
        painter.setFont(fonts.small.font)
        painter.setPen(colours.text)
        x = int(body.left()) - 4 - text_w
        fonts.small.draw(painter, x, top, text_w, fonts.title.height, text)
        return right - x

    def _fonts_for(self, font: QFont) -> Fonts:
        fonts = self._fonts.get(font.key())
        if fonts is None:
            fonts = self._fonts[font.key()] = Fonts(font)
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
