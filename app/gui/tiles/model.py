"""The device wall's model: one row per phone, updated from coalesced events.

The engine may report thousands of changes a second (progress ticks, battery,
state flips). :meth:`DeviceTileModel.update_tiles` only records the newest
snapshot per serial; a single-shot timer applies them at most ~60 times a
second, so a burst of 10,000 updates costs the view a handful of repaints
(STYLE.md, "Data and views"). Each changed row gets its own ``dataChanged``:
the view then repaints exactly the changed tiles, where one signal over a
block of rows would repaint the bounding box of the block in a wrapped wall.

Busy tiles show a running clock. Each tile's clock is reported when its own
displayed second changes, not all together once a second, so the repaints of
a wall of busy phones are spread over the second.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)

from app.gui.theme import TILE_STATES

FLUSH_INTERVAL_MS = 16  # apply pending updates at most ~60 times a second...
# ...and at most this many tiles at a time: a hundred phones changing at once are
# applied over a few frames instead of in one long stretch of the event loop.
FLUSH_MAX_TILES = 25
TICK_INTERVAL_MS = 200  # how often busy tiles' clocks are checked (each changes once a second)

ModelIndex = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class DeviceTile:
    """What one tile shows; built by the engine side from device and task events.

    Attributes:
        state: one of :data:`TILE_STATES`.
        task_started_at: epoch seconds; the tile shows the time elapsed since.
        last_result: outcome of the previous task ("success", "failure", "revoked"...).
        thumbnail: an optional PNG of the phone's screen.
    """

    serial: str
    nickname: str = ""
    model: str = ""
    state: str = "idle"
    battery_level: int | None = None
    charging: bool | None = None
    task_kind: str | None = None
    task_id: str | None = None
    progress_percent: int | None = None
    progress_step: str | None = None
    progress_message: str | None = None
    task_started_at: float | None = None
    last_result: str | None = None
    tags: tuple[str, ...] = ()
    thumbnail: bytes | None = None

    def __post_init__(self) -> None:
        if self.state not in TILE_STATES:
            raise ValueError(f"unknown tile state {self.state!r}: use one of {TILE_STATES}")

    @property
    def title(self) -> str:
        """The name an operator knows the phone by."""
        return self.nickname or self.model or self.serial

    @property
    def ticking(self) -> bool:
        """True while the tile shows a running clock."""
        return self.state == "busy" and self.task_started_at is not None

    def elapsed(self, at: float) -> float | None:
        """Seconds the current task has run, at time ``at``."""
        if self.task_started_at is None:
            return None
        return max(0.0, at - self.task_started_at)


class TileRole(IntEnum):
    """Custom data roles of :class:`DeviceTileModel`."""

    TILE = Qt.ItemDataRole.UserRole + 1  # the DeviceTile
    SERIAL = Qt.ItemDataRole.UserRole + 2
    STATE = Qt.ItemDataRole.UserRole + 3
    ELAPSED = Qt.ItemDataRole.UserRole + 4  # float seconds or None
    NOW = Qt.ItemDataRole.UserRole + 5  # the model's clock, so painting uses one time


def format_elapsed(seconds: float | None) -> str:
    """``mm:ss`` under an hour, ``h:mm:ss`` after."""
    if seconds is None:
        return ""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class DeviceTileModel(QAbstractListModel):
    """A list model of :class:`DeviceTile`, one row per serial.

    Signals:
        counters_changed(dict): counts per state plus "total", after they change.
    """

    counters_changed = Signal(dict)

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        clock: Callable[[], float] = time.time,
        flush_interval_ms: int = FLUSH_INTERVAL_MS,
    ) -> None:
        super().__init__(parent)
        self._clock = clock
        self._tiles: list[DeviceTile] = []
        self._rows: dict[str, int] = {}
        self._pending: dict[str, DeviceTile] = {}
        self._seconds: dict[str, int] = {}  # the whole second each ticking tile shows
        self._counters = self._count()
        self.flush_count = 0  # how many times pending updates were applied
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(flush_interval_ms)
        self._flush_timer.timeout.connect(self._on_flush_timer_timeout)
        self._tick_timer = QTimer(self)
        self._tick_timer.setInterval(TICK_INTERVAL_MS)
        self._tick_timer.timeout.connect(self._on_tick_timer_timeout)

    # -- public API ---------------------------------------------------------

    def set_tiles(self, tiles: Iterable[DeviceTile]) -> None:
        """Replace every tile with a full snapshot.

        The model resets only when the set of serials changes; otherwise rows keep
        their order and only the changed ones are reported. Pending partial
        updates are dropped: the snapshot is newer.
        """
        snapshot = {tile.serial: tile for tile in tiles}
        self._pending.clear()
        if set(snapshot) != set(self._rows):
            self.beginResetModel()
            self._tiles = list(snapshot.values())
            self._rows = {tile.serial: row for row, tile in enumerate(self._tiles)}
            self.endResetModel()
        else:
            changed = []
            for serial, tile in snapshot.items():
                row = self._rows[serial]
                if self._tiles[row] != tile:
                    self._tiles[row] = tile
                    changed.append(row)
            self._emit_changed(changed)
        self._after_change()

    def update_tiles(self, tiles: Iterable[DeviceTile]) -> None:
        """Record changed or new tiles; they are applied on the next flush (<= 16 ms)."""
        for tile in tiles:
            self._pending[tile.serial] = tile
        if self._pending and not self._flush_timer.isActive():
            self._flush_timer.start()

    def remove_tiles(self, serials: Iterable[str]) -> None:
        """Drop the rows of these serials now (unknown serials are ignored)."""
        for serial in serials:
            self._pending.pop(serial, None)
            row = self._rows.get(serial)
            if row is None:
                continue
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._tiles[row]
            self._rows = {tile.serial: index for index, tile in enumerate(self._tiles)}
            self.endRemoveRows()
        self._after_change()

    def flush(self, limit: int | None = None) -> None:
        """Apply pending updates now (the timer does this by itself, ``limit`` tiles at
        a time, oldest first; the rest on its next tick)."""
        self._flush_timer.stop()
        if not self._pending:
            return
        if limit is None or len(self._pending) <= limit:
            pending, self._pending = self._pending, {}
        else:
            serials = list(itertools.islice(self._pending, limit))
            pending = {serial: self._pending.pop(serial) for serial in serials}
            self._flush_timer.start()
        self.flush_count += 1
        changed: list[int] = []
        added: list[DeviceTile] = []
        for serial, tile in pending.items():
            row = self._rows.get(serial)
            if row is None:
                added.append(tile)
            elif self._tiles[row] != tile:
                self._tiles[row] = tile
                changed.append(row)
        self._emit_changed(changed)
        if added:
            first = len(self._tiles)
            self.beginInsertRows(QModelIndex(), first, first + len(added) - 1)
            for offset, tile in enumerate(added):
                self._tiles.append(tile)
                self._rows[tile.serial] = first + offset
            self.endInsertRows()
        self._after_change()

    def tile(self, row: int) -> DeviceTile | None:
        """The tile in ``row``, or None out of range."""
        return self._tiles[row] if 0 <= row < len(self._tiles) else None

    def row_of(self, serial: str) -> int:
        """The row of ``serial``, or -1 when it has no tile."""
        return self._rows.get(serial, -1)

    def tiles(self) -> list[DeviceTile]:
        """All tiles in row order (a copy)."""
        return list(self._tiles)

    def counters(self) -> dict[str, int]:
        """Tiles per state (every state present, zero if none) plus "total"."""
        return dict(self._counters)

    # -- Qt model interface ------------------------------------------------------

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._tiles)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        tile = self.tile(index.row()) if index.isValid() else None
        if tile is None:
            return None
        if role == TileRole.TILE:
            return tile
        if role == Qt.ItemDataRole.DisplayRole:
            # Keyboard search in the view matches on this text.
            return f"{tile.title}\n{tile.serial}"
        if role == TileRole.SERIAL:
            return tile.serial
        if role == TileRole.STATE:
            return tile.state
        if role == TileRole.ELAPSED:
            return tile.elapsed(self._clock())
        if role == TileRole.NOW:
            return self._clock()
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(tile, self._clock())
        return None

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    # -- internals ---------------------------------------------------------------

    def _on_flush_timer_timeout(self) -> None:
        self.flush(FLUSH_MAX_TILES)

    def _on_tick_timer_timeout(self) -> None:
        now = self._clock()
        shown, seconds = self._seconds, {}
        rows = []
        for row, tile in enumerate(self._tiles):
            if tile.ticking:
                second = seconds[tile.serial] = _whole_seconds(tile, now)
                if shown.get(tile.serial) != second:
                    rows.append(row)
        self._seconds = seconds
        self._emit_changed(rows, [TileRole.ELAPSED, Qt.ItemDataRole.ToolTipRole])
        if not seconds:
            self._tick_timer.stop()

    def _emit_changed(self, rows: list[int], roles: list[int] | None = None) -> None:
        """One dataChanged per changed row, so the view repaints only those tiles."""
        if not rows:
            return
        now = self._clock()
        for row in sorted(rows):
            index = self.index(row, 0)
            if roles is None:
                tile = self._tiles[row]
                if tile.ticking:  # repainted now, with the clock as it is
                    self._seconds[tile.serial] = _whole_seconds(tile, now)
                self.dataChanged.emit(index, index)
            else:
                self.dataChanged.emit(index, index, roles)

    def _after_change(self) -> None:
        counters = self._count()
        if counters != self._counters:
            self._counters = counters
            self.counters_changed.emit(dict(counters))
        now = self._clock()
        ticking = False
        for tile in self._tiles:
            if tile.ticking:
                ticking = True
                if tile.serial not in self._seconds:  # new rows are painted as they are
                    self._seconds[tile.serial] = _whole_seconds(tile, now)
        if ticking and not self._tick_timer.isActive():
            self._tick_timer.start()
        elif not ticking:
            self._tick_timer.stop()

    def _count(self) -> dict[str, int]:
        counts = dict.fromkeys(TILE_STATES, 0)
        for tile in self._tiles:
            counts[tile.state] += 1
        counts["total"] = len(self._tiles)
        return counts


def _whole_seconds(tile: DeviceTile, now: float) -> int:
    """The whole seconds a ticking tile's clock shows at ``now``."""
    return int(tile.elapsed(now) or 0.0)


def _tooltip(tile: DeviceTile, now: float) -> str:
    lines = [f"{tile.title} ({tile.serial})", f"Model: {tile.model or 'unknown'}",
             f"State: {tile.state}"]
    if tile.battery_level is not None:
        charging = ", charging" if tile.charging else ""
        lines.append(f"Battery: {tile.battery_level}%{charging}")
    if tile.task_kind:
        lines.append(f"Task: {tile.task_kind} {tile.task_id or ''}".rstrip())
        if tile.task_started_at is not None:
            lines.append(f"Running for {format_elapsed(tile.elapsed(now))}")
        if tile.progress_percent is not None:
            lines.append(f"Progress: {tile.progress_percent}%")
        detail = " - ".join(p for p in (tile.progress_step, tile.progress_message) if p)
        if detail:
            lines.append(detail)
    if tile.last_result:
        lines.append(f"Last result: {tile.last_result}")
    if tile.tags:
        lines.append("Tags: " + ", ".join(tile.tags))
    return "\n".join(lines)
