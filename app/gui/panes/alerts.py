"""The alert list: engine alerts, newest first, kept in a bounded buffer."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtWidgets import QListView, QVBoxLayout, QWidget

from app.gui.bridge import EngineBridge
from app.gui.theme import status_colors

MAX_ALERTS = 500
_ROOT = QModelIndex()
_SEVERITY_STATUS = {"error": "FAILURE", "warning": "RETRY", "info": "SUCCESS"}


class AlertListModel(QAbstractListModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._items: deque[tuple[float, str, str, str]] = deque(maxlen=MAX_ALERTS)

    def add(self, at: float, kind: str, severity: str, message: str) -> None:
        if len(self._items) == MAX_ALERTS:
            self.beginRemoveRows(QModelIndex(), MAX_ALERTS - 1, MAX_ALERTS - 1)
            self._items.pop()
            self.endRemoveRows()
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._items.appendleft((at, kind, severity, message))
        self.endInsertRows()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        at, kind, severity, message = self._items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            stamp = time.strftime("%H:%M:%S", time.localtime(at))
            return f"{stamp}  {severity.upper():7}  {message}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{kind}: {message}"
        if role == Qt.ItemDataRole.ForegroundRole:
            from PySide6.QtWidgets import QApplication

            colours = status_colors(QApplication.palette())
            return colours.get(_SEVERITY_STATUS.get(severity, "RETRY"))
        return None


class AlertsPane(QWidget):
    """Signals:
        alert_added(str, str): severity and message of a new alert (for notifications).
    """

    alert_added = Signal(str, str)

    def __init__(self, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self.model = AlertListModel(self)
        self._setup_ui()
        bridge.alert.connect(self._on_bridge_alert)

    def _setup_ui(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.view = QListView(self)
        self.view.setModel(self.model)
        self.view.setUniformItemSizes(True)
        self.view.setWordWrap(False)
        layout.addWidget(self.view)

    def engine_started(self) -> None:
        self._bridge.run(self._load(), what="load alerts")

    async def _load(self) -> None:
        from app.store import alerts

        records = await self._bridge.engine.store.call(alerts.list_alerts, 200)
        for record in reversed(records):
            self.model.add(record.created_at, record.kind, str(record.severity),
                           record.message)

    def _on_bridge_alert(self, event: Any) -> None:
        self.model.add(event.at, event.kind, event.severity, event.message)
        self.alert_added.emit(event.severity, event.message)
