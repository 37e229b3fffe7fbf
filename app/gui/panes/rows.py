"""Table models over immutable records; :class:`KeyedRowsModel` merges reloads in place.

Panes reload their rows from the store a few times a second. Resetting the
model each time would drop the operator's selection, scroll position and
sort; :meth:`KeyedRowsModel.replace_rows` instead compares the new list with
the rows shown and emits only ``rowsRemoved``, ``rowsInserted`` and
``dataChanged`` for what actually changed (in contiguous blocks).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

R = TypeVar("R")
ModelIndex = QModelIndex | QPersistentModelIndex


def blocks(rows: Iterable[int]) -> list[tuple[int, int]]:
    """Contiguous ``(first, last)`` runs of ascending row numbers."""
    out: list[tuple[int, int]] = []
    for row in rows:
        if out and row == out[-1][1] + 1:
            out[-1] = (out[-1][0], row)
        else:
            out.append((row, row))
    return out


class RecordTableModel(QAbstractTableModel, Generic[R]):
    """A flat table with one record a row (in ``_rows``) and columns named by ``HEADERS``.

    Subclasses define ``HEADERS`` and ``data()`` and keep ``_rows``;
    ``record(row)`` returns the record shown in a row (None past the end, so
    ``record(index.row())`` of an invalid index is None too).
    """

    HEADERS: tuple[str, ...] = ()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[R] = []

    def record(self, row: int) -> R | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    # -- Qt model interface -------------------------------------------------------------
    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section] if 0 <= section < len(self.HEADERS) else None
        return None


class KeyedRowsModel(RecordTableModel[R]):
    """Rows of records kept in ``order`` order and identified by ``key``.

    Subclasses define ``HEADERS`` and ``data()``.
    """

    def __init__(self, key: Callable[[R], Hashable], order: Callable[[R], Any],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._key = key
        self._order = order
        self._index: dict[Hashable, int] = {}
        self.resets = 0  # full resets (tests check that reloads merge instead)

    # -- public API -------------------------------------------------------------------
    def records(self) -> list[R]:
        return list(self._rows)

    def row_of(self, key: Hashable) -> int | None:
        return self._index.get(key)

    def replace_rows(self, new_rows: Sequence[R]) -> None:
        """Show ``new_rows`` (sorted by ``order``), signalling only the differences.

        A record whose order key changed is removed and inserted at its new place,
        so the rows stay sorted.
        """
        wanted = {self._key(r): r for r in new_rows}
        gone = [i for i, r in enumerate(self._rows)
                if (new := wanted.get(self._key(r))) is None
                or self._order(new) != self._order(r)]
        for first, last in reversed(blocks(gone)):
            self.beginRemoveRows(QModelIndex(), first, last)
            del self._rows[first:last + 1]
            self.endRemoveRows()
        changed = []
        for i, old in enumerate(self._rows):
            new = wanted[self._key(old)]
            if new != old:
                self._rows[i] = new
                changed.append(i)
        for first, last in blocks(changed):
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(self.HEADERS) - 1))
        present = {self._key(r) for r in self._rows}
        fresh = sorted((r for r in new_rows if self._key(r) not in present), key=self._order)
        if fresh:
            orders = [self._order(r) for r in self._rows]
            groups: dict[int, list[R]] = {}
            for record in fresh:
                groups.setdefault(bisect.bisect_left(orders, self._order(record)), []).append(
                    record)
            # From the bottom up, so earlier insertion points keep their meaning.
            for position in sorted(groups, reverse=True):
                group = groups[position]
                self.beginInsertRows(QModelIndex(), position, position + len(group) - 1)
                self._rows[position:position] = group
                self.endInsertRows()
        if gone or fresh:
            self._index = {self._key(r): i for i, r in enumerate(self._rows)}

    def set_order(self, order: Callable[[R], Any]) -> None:
        """Sort the same rows by a new key; selections follow their records."""
        self.layoutAboutToBeChanged.emit()
        old_keys = [self._key(r) for r in self._rows]
        self._order = order
        self._rows.sort(key=order)
        self._index = {self._key(r): i for i, r in enumerate(self._rows)}
        persistent = self.persistentIndexList()
        moved = [self.index(self._index[old_keys[i.row()]], i.column())
                 if 0 <= i.row() < len(old_keys) else QModelIndex() for i in persistent]
        self.changePersistentIndexList(persistent, moved)
        self.layoutChanged.emit()

    def clear(self) -> None:
        self.beginResetModel()
        self.resets += 1
        self._rows = []
        self._index = {}
        self.endResetModel()

    def column_changed(self, column: int) -> None:
        """Repaint one column of every row (clocks, countdowns)."""
        if self._rows:
            self.dataChanged.emit(self.index(0, column), self.index(len(self._rows) - 1, column),
                                  [Qt.ItemDataRole.DisplayRole])
