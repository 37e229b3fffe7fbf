"""The status bar: engine state, adb server, device counts, queue depth, last error."""

from __future__ import annotations

import asyncio
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from app.core.enums import TaskState
from app.gui.bridge import EngineBridge
from app.gui.livelabel import LiveLabel
from app.gui.throttle import Throttle

QUEUE_REFRESH_MS = 2000
DEVICES_REFRESH_MS = 250  # device counts follow device events at most 4 times a second


class StatusBar(QStatusBar):
    def __init__(self, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._counts: dict[str, Any] = {}
        self._queue_job: asyncio.Task[Any] | None = None
        self._setup_ui()
        bridge.engine_state.connect(self._on_bridge_engine_state)
        bridge.adb_state.connect(self._on_bridge_adb_state)
        bridge.devices_changed.connect(self._on_bridge_devices_changed)
        bridge.error.connect(self._on_bridge_error)
        self._timer = QTimer(self)
        self._timer.setInterval(QUEUE_REFRESH_MS)
        self._timer.timeout.connect(self._refresh_queue)
        self._devices_refresh = Throttle(DEVICES_REFRESH_MS, self._refresh_devices, self)

    def _setup_ui(self) -> None:
        # Live text: labels that do not re-lay out the window on every change.
        self.engine_label = LiveLabel("engine: starting")
        self.adb_label = LiveLabel("adb: —")
        self.devices_label = LiveLabel("devices: —")
        self.queue_label = LiveLabel("queue: —")
        self.error_label = QLabel("")
        self.error_label.setToolTip("The last error reported by an action")
        for label in (self.engine_label, self.adb_label, self.devices_label, self.queue_label):
            self.addPermanentWidget(label)
        self.addWidget(self.error_label, 1)

    def engine_started(self) -> None:
        self._on_bridge_engine_state(self._bridge.engine.state, "")
        server = self._bridge.engine.devices.server
        self._on_bridge_adb_state(server.alive, server.message)
        self._refresh_devices()
        self._refresh_queue()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        self._devices_refresh.stop()

    # -- slots -----------------------------------------------------------------------
    def _on_bridge_engine_state(self, state: str, message: str) -> None:
        self.engine_label.setText(f"engine: {state}")
        self.engine_label.setToolTip(message or f"The dispatch engine is {state}")

    def _on_bridge_adb_state(self, alive: bool, message: str) -> None:
        server = self._bridge.engine.devices.server if hasattr(
            self._bridge.engine, "devices") else None
        where = f" {server.host}:{server.port}" if server and server.port else ""
        self.adb_label.setText(f"adb{where}: {'up' if alive else 'DOWN'}")
        self.adb_label.setToolTip(message or ("the adb server answers" if alive else
                                              "the adb server does not answer"))

    def _on_bridge_devices_changed(self, _views: list[Any]) -> None:
        self._devices_refresh()

    def _refresh_devices(self) -> None:
        engine = self._bridge.engine
        if not hasattr(engine, "devices"):
            return
        counts = engine.device_counts()
        self.devices_label.setText(
            f"devices: {sum(counts.values())} · idle {counts.get('idle', 0)} · busy "
            f"{counts.get('busy', 0)} · held {counts.get('held', 0)} · offline "
            f"{counts.get('unavailable', 0)}")

    def _on_bridge_error(self, message: str) -> None:
        self.error_label.setText(f"⚠ {message}")
        self.error_label.setToolTip(message)

    def _refresh_queue(self) -> None:
        if self._queue_job is not None and not self._queue_job.done():
            return
        self._queue_job = self._bridge.run(self._load_queue(), what="queue depth")

    async def _load_queue(self) -> None:
        from app.store import tasks

        counts = await self._bridge.engine.store.call(tasks.count_by_state)
        self.queue_label.setText(
            f"queue: {counts.get(TaskState.PENDING, 0)} pending · "
            f"{counts.get(TaskState.RUNNING, 0) + counts.get(TaskState.CLAIMED, 0)} running")
