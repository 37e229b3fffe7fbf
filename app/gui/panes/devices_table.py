"""The device table: the same phones as the tile wall, as sortable rows.

:func:`display_state` is the one mapping from the engine's view of a phone to
the state an operator sees (tile colour, table cell, counters), so the wall and
the table never disagree. The table is a :class:`DeviceTableModel` behind a
``QSortFilterProxyModel``; its header offers a column chooser whose choice is
kept in ``gui.ini``.

The proxy re-sorts the rows of every ``dataChanged`` (~40 us a row, calling
back into Python), and every signal costs a few more, which a busy lab would
pay ten times a second even while the operator looks at the tile wall. So
while the table is off screen the model keeps its rows current without
signalling changes, and the proxy does not sort; shown again, the table is
refreshed and sorted once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPoint,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction, QColor, QGuiApplication, QHideEvent, QShowEvent
from PySide6.QtWidgets import QHeaderView, QMenu, QTableView, QWidget

from app.core.enums import DeviceState
from app.engine.bus import DeviceView, ExecutionProgress
from app.gui.panes.rows import ModelIndex, RecordTableModel, blocks
from app.gui.panes.wiring import popup_menu, set_up_rows
from app.gui.theme import state_colors

NOT_SET = "\u2014"  # em dash
CHARGING = "\u26a1"  # the tile delegate uses the same mark
CONNECTED_DISPATCH = ("idle", "busy", "held", "maintenance")


def display_state(view: DeviceView) -> str:
    """The state shown for a phone: its connection problem first, else its dispatch state.

    A phone unplugged mid-task is still "busy" for the dispatcher during the
    grace window, but the operator must see at once that it is gone.
    """
    state = view.record.state
    if state is not DeviceState.ONLINE:
        return state.value  # offline | unauthorized | absent
    return view.dispatch if view.dispatch in CONNECTED_DISPATCH else "offline"


def device_title(view: DeviceView) -> str:
    """The name an operator knows the phone by."""
    return view.record.nickname or view.record.model or view.serial


class DeviceTableModel(RecordTableModel[DeviceView]):
    """One row per phone, in arrival order; sort through a proxy (``SORT_ROLE``).

    Signals:
        states_changed(): a row's displayed state changed (actions re-check).
    """

    (SERIAL, NICKNAME, MODEL, MANUFACTURER, ANDROID, SDK, STATE, DISPATCH, BATTERY, TEMP,
     TASK, TAGS, LAST_SEEN) = range(13)
    HEADERS = ("Serial", "Nickname", "Model", "Manufacturer", "Android", "SDK", "State",
               "Dispatch", "Battery", "Temp", "Task", "Tags", "Last seen")
    HIDDEN_BY_DEFAULT = (MANUFACTURER, SDK)
    SORT_ROLE = Qt.ItemDataRole.UserRole + 1
    SERIAL_ROLE = Qt.ItemDataRole.UserRole + 2

    states_changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._row_of: dict[str, int] = {}  # serial -> row
        self._progress: dict[str, ExecutionProgress] = {}
        self._colours: tuple[int, dict[str, QColor]] | None = None
        self._watched = True  # a view shows the rows: signal every change
        self._stale = False  # rows changed unsignalled while nobody watched

    def set_watched(self, watched: bool) -> None:
        """Whether a view shows the rows now. Unwatched, changed rows are not signalled
        (rows added or removed still are); watched again, one signal covers them all."""
        self._watched = watched
        if watched and self._stale and self._rows:
            self._stale = False
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(len(self._rows) - 1, len(self.HEADERS) - 1))

    # -- public API ---------------------------------------------------------------
    def set_views(self, views: Iterable[DeviceView]) -> None:
        """Replace every row with a full snapshot."""
        self.beginResetModel()
        self._rows = list(views)
        self._row_of = {view.serial: row for row, view in enumerate(self._rows)}
        self._progress.clear()
        self.endResetModel()
        self.states_changed.emit()

    def update_views(self, views: Iterable[DeviceView]) -> None:
        """Apply changed or new phones: one ``dataChanged`` per block of changed rows."""
        states = False
        changed: list[int] = []
        for view in views:
            row = self._row_of.get(view.serial)
            if row is None:
                self.beginInsertRows(QModelIndex(), len(self._rows), len(self._rows))
                self._row_of[view.serial] = len(self._rows)
                self._rows.append(view)
                self.endInsertRows()
                states = True
                continue
            old = self._rows[row]
            if old.task_uid != view.task_uid:
                self._progress.pop(view.serial, None)
            states = states or display_state(old) != display_state(view)
            self._rows[row] = view
            changed.append(row)
        self._signal_changed(changed, 0, len(self.HEADERS) - 1)
        if states:
            self.states_changed.emit()

    def apply_progress(self, events: Iterable[ExecutionProgress]) -> None:
        """Patch the task column of phones running the reporting tasks (one signal)."""
        changed: list[int] = []
        for event in events:
            row = self._row_of.get(event.serial or "")
            if row is not None and self._rows[row].task_uid == event.task_uid:
                self._progress[event.serial or ""] = event
                changed.append(row)
        self._signal_changed(changed, self.TASK, self.TASK)

    def view_of(self, serial: str) -> DeviceView | None:
        row = self._row_of.get(serial)
        return None if row is None else self._rows[row]

    def views(self) -> list[DeviceView]:
        return list(self._rows)

    def progress_of(self, serial: str) -> ExecutionProgress | None:
        """The newest progress of the task running on ``serial``, if any."""
        return self._progress.get(serial)

    # -- Qt model interface ----------------------------------------------------------
    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        view = self.record(index.row()) if index.isValid() else None
        if view is None:
            return None
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(view, column)
        if role == self.SORT_ROLE:
            return self._sort_key(view, column)
        if role == self.SERIAL_ROLE:
            return view.serial
        if role == Qt.ItemDataRole.BackgroundRole and column == self.STATE:
            return self._state_colour(display_state(view))
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == self.TASK and view.task_uid:
                return f"Task {view.task_uid}"
            if column == self.NICKNAME and view.record.notes:
                return view.record.notes
            if column == self.STATE and view.held_by:
                return f"Held by {view.held_by}"
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (self.SDK, self.BATTERY,
                                                                     self.TEMP):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    # -- internals ----------------------------------------------------------------------
    def _signal_changed(self, rows: list[int], first_column: int, last_column: int) -> None:
        """One ``dataChanged`` per block of changed rows, or none while unwatched."""
        if not rows:
            return
        if not self._watched:
            self._stale = True
            return
        for first, last in blocks(sorted(set(rows))):
            self.dataChanged.emit(self.index(first, first_column),
                                  self.index(last, last_column))

    def _text(self, view: DeviceView, column: int) -> str:
        record = view.record
        if column == self.SERIAL:
            return view.serial
        if column == self.NICKNAME:
            return record.nickname
        if column == self.MODEL:
            return record.model
        if column == self.MANUFACTURER:
            return record.manufacturer
        if column == self.ANDROID:
            return record.android_version
        if column == self.SDK:
            return str(record.sdk) if record.sdk is not None else NOT_SET
        if column == self.STATE:
            return display_state(view)
        if column == self.DISPATCH:
            return view.dispatch
        if column == self.BATTERY:
            if record.battery_level is None:
                return NOT_SET
            return f"{record.battery_level}%" + (f" {CHARGING}" if record.charging else "")
        if column == self.TEMP:
            return NOT_SET if record.battery_temp is None else f"{record.battery_temp:.1f} \u00b0C"
        if column == self.TASK:
            return self._task_text(view)
        if column == self.TAGS:
            return ", ".join(record.tags)
        if column == self.LAST_SEEN:
            seen = record.last_seen
            return NOT_SET if seen is None else datetime.fromtimestamp(seen).strftime(
                "%Y-%m-%d %H:%M:%S")
        return ""

    def _task_text(self, view: DeviceView) -> str:
        if not view.task_kind:
            return f"last: {view.last_result}" if view.last_result else ""
        progress = self._progress.get(view.serial)
        percent = progress.percent if progress else view.progress_percent
        step = (progress.step if progress else view.progress_step) or ""
        parts = [view.task_kind, f"{percent}%" if percent is not None else "", step]
        return " ".join(part for part in parts if part)

    def _sort_key(self, view: DeviceView, column: int) -> Any:
        record = view.record
        if column == self.SDK:
            return record.sdk if record.sdk is not None else -1
        if column == self.BATTERY:
            return record.battery_level if record.battery_level is not None else -1
        if column == self.TEMP:
            return record.battery_temp if record.battery_temp is not None else -1000.0
        if column == self.LAST_SEEN:
            return record.last_seen or 0.0
        return self._text(view, column).lower()

    def _state_colour(self, state: str) -> QColor | None:
        palette = QGuiApplication.palette()
        if self._colours is None or self._colours[0] != palette.cacheKey():
            self._colours = (palette.cacheKey(), state_colors(palette))
        return self._colours[1].get(state)


class DeviceTableView(QTableView):
    """A sortable device table with a column chooser on its header.

    Signals:
        columns_changed(list): the hidden column numbers, after the operator changed them.
    """

    columns_changed = Signal(list)

    def __init__(self, model: DeviceTableModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = model
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(model)
        self.proxy.setSortRole(DeviceTableModel.SORT_ROLE)
        self.proxy.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setDynamicSortFilter(False)  # on while shown (showEvent)
        model.set_watched(False)  # likewise
        self.setModel(self.proxy)
        self._setup_ui()

    def selected_serials(self) -> list[str]:
        """Serials of the selected rows, in display order."""
        selection = self.selectionModel()
        rows = sorted({index.row() for index in selection.selectedRows()}) if selection else []
        return [str(self.proxy.index(row, 0).data(DeviceTableModel.SERIAL_ROLE)) for row in rows]

    def select_serials(self, serials: Iterable[str]) -> None:
        """Select exactly these phones (unknown serials are ignored)."""
        wanted = set(serials)
        selection = self.selectionModel()
        selection.clearSelection()
        flags = (selection.SelectionFlag.Select | selection.SelectionFlag.Rows)
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            if index.data(DeviceTableModel.SERIAL_ROLE) in wanted:
                selection.select(index, flags)

    def hidden_columns(self) -> list[int]:
        return [c for c in range(self.source.columnCount()) if self.isColumnHidden(c)]

    def set_hidden_columns(self, columns: Iterable[int]) -> None:
        hidden = set(columns)
        for column in range(self.source.columnCount()):
            # The serial names the row: it can never be hidden.
            self.setColumnHidden(column, column in hidden and column != DeviceTableModel.SERIAL)

    def column_menu(self) -> QMenu:
        """The column chooser: one checkable entry per column."""
        menu = QMenu(self)
        for column, title in enumerate(DeviceTableModel.HEADERS):
            action = QAction(title, menu)
            action.setCheckable(True)
            action.setChecked(not self.isColumnHidden(column))
            action.setEnabled(column != DeviceTableModel.SERIAL)
            action.toggled.connect(
                lambda on, c=column: self._on_column_action_toggled(c, on))
            menu.addAction(action)
        return menu

    # -- set-up and slots ----------------------------------------------------------------
    def _setup_ui(self) -> None:
        set_up_rows(self, {DeviceTableModel.SERIAL: 150, DeviceTableModel.NICKNAME: 110,
                           DeviceTableModel.MODEL: 110, DeviceTableModel.ANDROID: 64,
                           DeviceTableModel.STATE: 96, DeviceTableModel.DISPATCH: 90,
                           DeviceTableModel.BATTERY: 72, DeviceTableModel.TEMP: 70,
                           DeviceTableModel.TASK: 180, DeviceTableModel.TAGS: 110})
        self.setSortingEnabled(True)
        self.sortByColumn(DeviceTableModel.SERIAL, Qt.SortOrder.AscendingOrder)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._on_header_context_menu_requested)
        header.setToolTip("Right-click to choose columns")
        self.set_hidden_columns(DeviceTableModel.HIDDEN_BY_DEFAULT)

    def _on_header_context_menu_requested(self, pos: QPoint) -> None:
        popup_menu(self.column_menu(), self.horizontalHeader(), pos)

    def _on_column_action_toggled(self, column: int, visible: bool) -> None:
        self.setColumnHidden(column, not visible)
        self.columns_changed.emit(self.hidden_columns())

    # -- Qt overrides ------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        self.source.set_watched(True)  # refreshes what changed while hidden...
        self.proxy.setDynamicSortFilter(True)  # ...and sorts it
        super().showEvent(event)

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self.proxy.setDynamicSortFilter(False)
        self.source.set_watched(False)


def selection_states(lookup: Callable[[str], DeviceView | None],
                     serials: Iterable[str]) -> set[str]:
    """Displayed states of these phones ("absent" for one the engine does not know)."""
    out = set()
    for serial in serials:
        view = lookup(serial)
        out.add(display_state(view) if view is not None else "absent")
    return out
