"""The locks pane's model: live locks with a TTL that counts down locally.

Reloads merge by lock name (:class:`KeyedRowsModel`); between reloads the
"Expires in" column is recomputed from ``expires_at`` once a second, so the
countdown is smooth without a query per tick.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import IntEnum
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QGuiApplication

from app.core.records import LockRecord
from app.gui.panes.rows import KeyedRowsModel
from app.gui.theme import status_colors

ModelIndex = QModelIndex | QPersistentModelIndex
RECORD_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2
EXPIRING_S = 60.0  # the countdown turns to the warning colour below this


class LockCol(IntEnum):
    NAME = 0
    HOLDER = 1
    OWNER = 2
    ACQUIRED = 3
    EXPIRES = 4
    NOTE = 5


HEADERS = ("Name", "Holder", "Owner", "Acquired", "Expires in", "Note")


def format_ttl(seconds: float) -> str:
    """Countdown text: 42s, 4:05, 1:02:03, 3d 04h; ``expired`` at zero."""
    if seconds <= 0:
        return "expired"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 48:
        days, hours = divmod(hours, 24)
        return f"{days}d {hours:02d}h"
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class LocksModel(KeyedRowsModel[LockRecord]):
    """Locks by name."""

    HEADERS = HEADERS

    def __init__(self, parent: QObject | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(key=lambda lock: lock.name, order=lambda lock: lock.name,
                         parent=parent)
        self._clock = clock
        self._colours: tuple[int, dict[str, QColor]] | None = None

    def tick(self) -> None:
        self.column_changed(LockCol.EXPIRES)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        lock = self.record(index.row()) if index.isValid() else None
        if lock is None:
            return None
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(lock, column)
        if role == RECORD_ROLE:
            return lock
        if role == SORT_ROLE:
            if column == LockCol.ACQUIRED:
                return lock.acquired_at
            if column == LockCol.EXPIRES:
                return lock.expires_at
            return self._text(lock, column).lower()
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == LockCol.EXPIRES:
                return time.strftime("expires %Y-%m-%d %H:%M:%S",
                                     time.localtime(lock.expires_at))
            if column == LockCol.OWNER:
                return f"{lock.owner}\nheartbeat {self._ago(lock.heartbeat_at)} ago"
            if column == LockCol.NOTE and lock.note:
                return lock.note
            return None
        if role == Qt.ItemDataRole.ForegroundRole and column == LockCol.EXPIRES:
            remaining = lock.remaining(self._clock())
            if remaining <= EXPIRING_S:
                return self._colour("FAILURE" if remaining <= 0 else "REVOKED")
        if role == Qt.ItemDataRole.TextAlignmentRole and column == LockCol.EXPIRES:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _text(self, lock: LockRecord, column: int) -> str:
        if column == LockCol.NAME:
            return lock.name
        if column == LockCol.HOLDER:
            return lock.holder_kind.value
        if column == LockCol.OWNER:
            return lock.owner
        if column == LockCol.ACQUIRED:
            return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(lock.acquired_at))
        if column == LockCol.EXPIRES:
            return format_ttl(lock.remaining(self._clock()))
        if column == LockCol.NOTE:
            return lock.note.split("\n", 1)[0]
        return ""

    def _ago(self, at: float) -> str:
        return format_ttl(max(1.0, self._clock() - at))

    def _colour(self, key: str) -> QColor | None:
        palette = QGuiApplication.palette()
        if self._colours is None or self._colours[0] != palette.cacheKey():
            self._colours = (palette.cacheKey(), status_colors(palette))
        return self._colours[1].get(key)
