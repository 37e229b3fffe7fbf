"""The device wall: one list view in icon mode, painted by :class:`TileDelegate`.

The view only turns operator gestures into signals (a context-menu action on
a selection, APK files dropped on a tile); what an action does is the
window's business.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import (
    QItemSelectionModel,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QContextMenuEvent,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDragMoveEvent,
    QDropEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QResizeEvent,
)
from PySide6.QtWidgets import QAbstractItemView, QListView, QMenu, QStyle, QWidget

from app.gui.tiles.delegate import TILE_WIDTH, TileDelegate
from app.gui.tiles.model import DeviceTile, DeviceTileModel, TileRole

# (action id, menu label); ids are what action_requested carries.
ACTIONS: tuple[tuple[str, str], ...] = (
    ("shell", "Open shell"),
    ("screenshot", "Screenshot"),
    ("install_apk", "Install APK\u2026"),
    ("reboot", "Reboot"),
    ("hold", "Hold"),
    ("release", "Release"),
    ("maintenance_on", "Maintenance on"),
    ("maintenance_off", "Maintenance off"),
    ("edit", "Edit nickname, tags and notes\u2026"),
)
_GROUP_ENDS = {"reboot", "release", "maintenance_off"}  # a separator after these
_CONNECTED = {"idle", "busy", "held", "maintenance"}  # adb can talk to the phone


class TileWallView(QListView):
    """A wrapping wall of device tiles with extended selection and APK drops.

    Signals:
        apks_dropped(list, list): (serials, .apk paths) dropped on a tile; the
            serials are the drop target, plus the rest of the selection when
            the target is part of it.
        action_requested(str, list): (action id from :data:`ACTIONS`, serials)
            chosen from the context menu.
    """

    apks_dropped = Signal(list, list)
    action_requested = Signal(str, list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._drop_row = -1
        self._catch_up: list[QPersistentModelIndex] = []  # tiles still showing an old image
        self._catch_up_timer = QTimer(self)
        self._catch_up_timer.setSingleShot(True)
        self._catch_up_timer.setInterval(0)
        self._catch_up_timer.timeout.connect(self._on_catch_up_timer_timeout)
        self._setup_ui()

    def selected_serials(self) -> list[str]:
        """Serials of the selected tiles, in wall order."""
        selection = self.selectionModel()
        if selection is None:
            return []
        rows = sorted(index.row() for index in selection.selectedIndexes())
        model = self.model()
        return [str(model.index(row, 0).data(TileRole.SERIAL)) for row in rows]

    def build_menu(self, serials: list[str]) -> QMenu:
        """The context menu for these tiles; actions that cannot apply are disabled."""
        states = {self._state_of(serial) for serial in serials}
        connected = bool(states & _CONNECTED)
        enabled = {
            "shell": connected, "screenshot": connected, "install_apk": connected,
            "reboot": connected,
            "hold": bool(states & (_CONNECTED - {"held"})),
            "release": "held" in states,
            "maintenance_on": bool(states - {"maintenance"}),
            "maintenance_off": "maintenance" in states,
            "edit": bool(serials),
        }
        menu = QMenu(self)
        for action_id, label in ACTIONS:
            action = QAction(label, menu)
            action.setObjectName(action_id)
            action.setData(action_id)
            action.setEnabled(enabled[action_id])
            action.triggered.connect(
                lambda _checked=False, a=action_id, s=list(serials): self._on_menu_triggered(a, s)
            )
            menu.addAction(action)
            if action_id in _GROUP_ENDS:
                menu.addSeparator()
        return menu

    # -- set-up and slots ---------------------------------------------------------

    def _setup_ui(self) -> None:
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setSelectionRectVisible(True)
        self.setMouseTracking(True)  # hover highlight
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setSpacing(2)
        self.setItemDelegate(TileDelegate(self))
        self.setDragEnabled(False)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setDropIndicatorShown(False)  # the target tile is outlined instead
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.DefaultContextMenu)

    def _on_menu_triggered(self, action_id: str, serials: list[str]) -> None:
        self.action_requested.emit(action_id, serials)

    def _on_catch_up_timer_timeout(self) -> None:
        pending, self._catch_up = self._catch_up, []
        for index in pending:
            if index.isValid():
                self.viewport().update(self.visualRect(QModelIndex(index)))

    # -- helpers -----------------------------------------------------------------

    def _fit_tiles_to_width(self) -> None:
        """Widen the tiles so each row fills the view instead of leaving a blank strip.
        The width is reckoned as if the scroll bar were shown, so a scroll bar coming
        and going cannot change the columns back and forth."""
        delegate = self.itemDelegate()
        if not isinstance(delegate, TileDelegate):
            return
        scroll_bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, self)
        gutter = 2 * self.spacing()  # icon mode spaces each tile on both sides
        available = self.contentsRect().width() - scroll_bar - self.spacing()
        columns = max(1, available // (TILE_WIDTH + gutter))
        width = max(TILE_WIDTH, available // columns - gutter)
        if width != delegate.tile_width:
            delegate.tile_width = width
            self.scheduleDelayedItemsLayout()

    def _state_of(self, serial: str) -> str:
        model = self.model()
        if isinstance(model, DeviceTileModel):
            tile = model.tile(model.row_of(serial))
            return tile.state if tile is not None else "absent"
        for row in range(model.rowCount() if model is not None else 0):
            tile = model.index(row, 0).data(TileRole.TILE)
            if isinstance(tile, DeviceTile) and tile.serial == serial:
                return tile.state
        return "absent"

    def _drop_targets(self, index: QModelIndex) -> list[str]:
        target = str(index.data(TileRole.SERIAL))
        selection = self.selectionModel()
        if selection is not None and selection.isSelected(index):
            return [target] + [s for s in self.selected_serials() if s != target]
        return [target]

    def _set_drop_row(self, row: int) -> None:
        if row == self._drop_row:
            return
        model = self.model()
        for changed in (self._drop_row, row):  # repaint the old and the new target only
            if changed >= 0 and model is not None:
                self.viewport().update(self.visualRect(model.index(changed, 0)))
        self._drop_row = row

    # -- Qt overrides --------------------------------------------------------------

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        index = self.indexAt(event.pos())
        selection = self.selectionModel()
        if index.isValid() and selection is not None and not selection.isSelected(index):
            # Right-clicking an unselected tile acts on that tile alone.
            selection.setCurrentIndex(
                index, QItemSelectionModel.SelectionFlag.ClearAndSelect
            )
        serials = self.selected_serials()
        if not serials:
            return
        menu = self.build_menu(serials)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(event.globalPos())  # never exec(): no nested loop under qasync

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if apk_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        index = self.indexAt(event.position().toPoint())
        if index.isValid() and apk_paths(event.mimeData()):
            self._set_drop_row(index.row())
            event.acceptProposedAction()
        else:
            self._set_drop_row(-1)
            event.ignore()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self._set_drop_row(-1)
        event.accept()

    def dropEvent(self, event: QDropEvent) -> None:
        self._set_drop_row(-1)
        index = self.indexAt(event.position().toPoint())
        paths = apk_paths(event.mimeData())
        if not index.isValid() or not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.apks_dropped.emit(self._drop_targets(index), paths)

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._fit_tiles_to_width()
        super().resizeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        delegate = self.itemDelegate()
        if isinstance(delegate, TileDelegate):
            delegate.begin_paint(region=event.region())
            super().paintEvent(event)
            for index in delegate.deferred:  # changed tiles left for the next paint
                if index.isValid():
                    self._catch_up.append(QPersistentModelIndex(index))
            delegate.begin_paint(None)
            if self._catch_up and not self._catch_up_timer.isActive():
                self._catch_up_timer.start()
        else:
            super().paintEvent(event)
        if self._drop_row < 0 or self.model() is None:
            return
        rect = self.visualRect(self.model().index(self._drop_row, 0)).adjusted(1, 1, -1, -1)
        painter = QPainter(self.viewport())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(self.palette().color(QPalette.ColorRole.Highlight), 3, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.drawRoundedRect(rect, 6, 6)
        painter.end()


def apk_paths(mime: QMimeData | None) -> list[str]:
    """Local .apk files in a drag's data (other files and remote URLs are ignored)."""
    if mime is None or not mime.hasUrls():
        return []
    paths = [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]
    return [path for path in paths if Path(path).suffix.lower() == ".apk"]

