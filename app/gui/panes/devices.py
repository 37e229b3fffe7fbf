"""The Devices pane: a header of counters, the tile wall or the table, actions, installs.

Data flow: ``engine.device_views()`` once the engine runs, then the bridge's
coalesced ``devices_changed`` (whole views of the phones that changed) and
``progress`` (execution progress, patched onto the phone running that task).
The table model keeps the views and the newest progress per phone; tiles are
derived from both, so the wall and the table always show the same thing.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QEvent, QModelIndex, QPoint, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QMenu,
    QSplitter,
    QStackedWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app.core.records import TaskRecord
from app.engine.bus import DeviceView, ExecutionProgress
from app.gui.bridge import EngineBridge
from app.gui.livelabel import LiveLabel
from app.gui.panes.device_actions import DeviceActions
from app.gui.panes.devices_table import DeviceTableModel, DeviceTableView, display_state
from app.gui.panes.install_status import InstallStatusPanel
from app.gui.settings_store import load_gui_settings, qsettings, save_gui_settings
from app.gui.theme import state_accent_colors
from app.gui.throttle import Throttle
from app.gui.tiles import DeviceTile, DeviceTileModel, TileWallView
from app.gui.viewtoggle import ViewToggleButton

log = logging.getLogger(__name__)

# Counter label -> the displayed states it adds up.
COUNTERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Idle", ("idle",)), ("Busy", ("busy",)), ("Held", ("held",)),
    ("Maintenance", ("maintenance",)), ("Offline", ("offline", "unauthorized", "absent")),
)
DOT = "\u25cf"  # black circle (DejaVu Sans has it)
HIDDEN_COLUMNS_KEY = "devices/hidden_columns"
COUNTERS_REFRESH_MS = 250


def tile_from_view(view: DeviceView, progress: ExecutionProgress | None = None) -> DeviceTile:
    """What the wall shows for one phone (``progress`` is the running task's newest)."""
    record = view.record
    live = progress if progress is not None and progress.task_uid == view.task_uid else None
    return DeviceTile(
        serial=view.serial, nickname=record.nickname, model=record.model,
        state=display_state(view), battery_level=record.battery_level,
        charging=record.charging, task_kind=view.task_kind, task_id=view.task_uid,
        progress_percent=live.percent if live else view.progress_percent,
        progress_step=live.step if live else view.progress_step,
        progress_message=live.message if live else view.progress_message,
        task_started_at=view.task_started_at, last_result=view.last_result,
        tags=tuple(record.tags),
    )


class DevicesPane(QWidget):
    """Every phone as a tile (or a table row), with the actions an operator needs."""

    def __init__(self, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self._paths = bridge.engine.paths
        self.table_model = DeviceTableModel(self)
        self.tile_model = DeviceTileModel(self)
        self._counters_refresh = Throttle(COUNTERS_REFRESH_MS, self._render_counters, self)
        self._setup_ui()
        self.device_actions = DeviceActions(bridge, self, self.selected_serials,
                                     self.table_model.view_of)
        self._setup_toolbar()
        self._connect()
        self._restore_view_choices()

    # -- public API --------------------------------------------------------------------------
    def engine_started(self) -> None:
        """Load every phone the engine knows; events keep them current from here."""
        views = self.bridge.engine.device_views()
        self.table_model.set_views(views)
        self.tile_model.set_tiles(tile_from_view(v) for v in views)
        self.device_actions.refresh()

    def selected_serials(self) -> list[str]:
        """The phones selected in the view on show."""
        if self.stack.currentWidget() is self.table:
            return self.table.selected_serials()
        return self.wall.selected_serials()

    def select_serials(self, serials: list[str]) -> None:
        """Select these phones in both views."""
        self.table.select_serials(serials)
        selection = self.wall.selectionModel()
        selection.clearSelection()
        for serial in serials:
            row = self.tile_model.row_of(serial)
            if row >= 0:
                selection.select(self.tile_model.index(row, 0), selection.SelectionFlag.Select)
        self.device_actions.refresh()

    def view_mode(self) -> str:
        return "table" if self.stack.currentWidget() is self.table else "tiles"

    def set_view_mode(self, mode: str) -> None:
        """Show "tiles" or "table"; the selection carries over."""
        if mode not in ("tiles", "table") or mode == self.view_mode():
            return
        serials = self.selected_serials()
        self.stack.setCurrentWidget(self.table if mode == "table" else self.wall)
        (self.table_action if mode == "table" else self.tiles_action).setChecked(True)
        self.select_serials(serials)
        settings = load_gui_settings(self._paths)
        settings.device_view = mode
        save_gui_settings(self._paths, settings)

    def toggle_view(self) -> None:
        self.set_view_mode("tiles" if self.view_mode() == "table" else "table")

    def shutting_down(self) -> None:
        """Close shell and screenshot windows opened from this pane."""
        self.device_actions.shutdown()

    # -- set-up --------------------------------------------------------------------------
    def _setup_ui(self) -> None:
        self.counters = LiveLabel()  # changes with every state flip: no relayout
        self.counters.setObjectName("deviceCounters")
        self.counters.setTextFormat(Qt.TextFormat.RichText)
        self.toolbar = QToolBar("Device actions", self)
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        header = QHBoxLayout()
        header.setContentsMargins(6, 4, 6, 0)
        header.addWidget(self.counters)
        header.addStretch(1)
        self.tiles_action = QAction("Tiles", self)
        self.table_action = QAction("Table", self)
        group = QActionGroup(self)
        for action in (self.tiles_action, self.table_action):
            action.setCheckable(True)
            group.addAction(action)
            header.addWidget(ViewToggleButton(action, self))
        self.tiles_action.setChecked(True)
        self.toggle_action = QAction("Switch tiles / table", self)
        self.toggle_action.setShortcut(QKeySequence("Ctrl+T"))
        self.toggle_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.addAction(self.toggle_action)
        for action in (self.tiles_action, self.table_action):
            action.setToolTip("Switch between the tile wall and the table (Ctrl+T)")

        self.wall = TileWallView(self)
        self.wall.setModel(self.tile_model)
        self.table = DeviceTableView(self.table_model, self)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.wall)
        self.stack.addWidget(self.table)
        self.installs = InstallStatusPanel(self)
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.stack)
        splitter.addWidget(self.installs)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(header)
        layout.addWidget(self.toolbar)
        layout.addWidget(splitter, 1)
        self._render_counters(self.tile_model.counters())

    def _setup_toolbar(self) -> None:
        for action_id, action in self.device_actions.actions.items():
            self.toolbar.addAction(action)
            if action_id in ("reboot", "release", "maintenance_off"):
                self.toolbar.addSeparator()

    def _connect(self) -> None:
        bridge = self.bridge
        bridge.devices_changed.connect(self._on_bridge_devices_changed)
        bridge.progress.connect(self._on_bridge_progress)
        bridge.tasks_changed.connect(self._on_bridge_tasks_changed)
        self.tile_model.counters_changed.connect(self._on_tile_model_counters_changed)
        self.table_model.states_changed.connect(self.device_actions.refresh)
        self.wall.action_requested.connect(self.device_actions.trigger)
        self.wall.apks_dropped.connect(self._on_wall_apks_dropped)
        self.wall.activated.connect(self._on_view_activated)
        self.table.activated.connect(self._on_view_activated)
        self.wall.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.table.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.table.customContextMenuRequested.connect(self._on_table_context_menu_requested)
        self.table.columns_changed.connect(self._on_table_columns_changed)
        self.toggle_action.triggered.connect(self.toggle_view)
        self.tiles_action.triggered.connect(lambda: self.set_view_mode("tiles"))
        self.table_action.triggered.connect(lambda: self.set_view_mode("table"))
        self.device_actions.installs_enqueued.connect(self.installs.model.add)

    def _restore_view_choices(self) -> None:
        stored = qsettings(self._paths).value(HIDDEN_COLUMNS_KEY)
        if isinstance(stored, list | str):
            items = [stored] if isinstance(stored, str) else stored
            self.table.set_hidden_columns(int(c) for c in items if str(c).isdigit())
        if load_gui_settings(self._paths).device_view == "table":
            self.stack.setCurrentWidget(self.table)
            self.table_action.setChecked(True)

    # -- slots -----------------------------------------------------------------------------
    def _on_bridge_devices_changed(self, views: list[DeviceView]) -> None:
        self.table_model.update_views(views)
        self.tile_model.update_tiles(
            tile_from_view(v, self.table_model.progress_of(v.serial)) for v in views)

    def _on_bridge_progress(self, events: list[ExecutionProgress]) -> None:
        self.table_model.apply_progress(events)
        self.installs.model.apply_progress(events)
        tiles = []
        for serial in {e.serial for e in events if e.serial}:
            view = self.table_model.view_of(serial)
            if view is not None:
                tiles.append(tile_from_view(view, self.table_model.progress_of(serial)))
        self.tile_model.update_tiles(tiles)

    def _on_tile_model_counters_changed(self, _counts: dict[str, int]) -> None:
        self._counters_refresh()  # rich text: at most 4 renders a second under load

    def _on_bridge_tasks_changed(self, records: list[TaskRecord]) -> None:
        self.installs.model.apply_tasks(records)

    def _on_wall_apks_dropped(self, serials: list[str], paths: list[str]) -> None:
        self.device_actions.install(serials, paths)

    def _on_view_activated(self, _index: QModelIndex) -> None:
        # Enter or a double-click: the most common interactive use, a shell.
        if self.device_actions.actions["shell"].isEnabled():
            self.device_actions.trigger("shell", self.selected_serials())

    def _on_selection_changed(self, *_args: Any) -> None:
        self.device_actions.refresh()

    def _on_table_context_menu_requested(self, pos: QPoint) -> None:
        if not self.table.selected_serials():
            return
        menu = QMenu(self)
        for action_id, action in self.device_actions.actions.items():
            menu.addAction(action)
            if action_id in ("reboot", "release", "maintenance_off"):
                menu.addSeparator()
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(self.table.viewport().mapToGlobal(pos))  # never exec() under qasync

    def _on_table_columns_changed(self, hidden: list[int]) -> None:
        store = qsettings(self._paths)
        store.setValue(HIDDEN_COLUMNS_KEY, [str(c) for c in hidden])
        store.sync()

    def _render_counters(self, counts: dict[str, int] | None = None) -> None:
        counts = self.tile_model.counters() if counts is None else counts
        accents = state_accent_colors(self.palette())
        parts = [f"<b>{counts.get('total', 0)}</b> devices"]
        for label, states in COUNTERS:
            colour = accents[states[0]].name()
            total = sum(counts.get(s, 0) for s in states)
            parts.append(f"<span style='color:{colour}'>{DOT}</span> {label} <b>{total}</b>")
        self.counters.setText("&nbsp;&nbsp;&nbsp;".join(parts))
        self.counters.setToolTip("Offline counts offline, unauthorized and unplugged phones")

    # -- Qt overrides ----------------------------------------------------------------------
    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._render_counters(self.tile_model.counters())
