"""GUI-only preferences (theme, window geometry, pane layout, view choices).

They live in ``gui.ini`` inside the data directory (never the real home when a
test passes ``--data-dir``). Engine settings (adb server, retention, …) live in
the store's settings table instead (``app/store/settings.py``), and secrets only
in the keyring.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QByteArray, QSettings

from app.core.paths import Paths

THEMES = ("system", "light", "dark")


@dataclass
class GuiSettings:
    theme: str = "system"
    device_view: str = "tiles"  # tiles | table


def qsettings(paths: Paths) -> QSettings:
    return QSettings(str(paths.data_dir / "gui.ini"), QSettings.Format.IniFormat)


def load_gui_settings(paths: Paths) -> GuiSettings:
    store = qsettings(paths)
    theme = str(store.value("theme", "system"))
    view = str(store.value("device_view", "tiles"))
    return GuiSettings(theme=theme if theme in THEMES else "system",
                       device_view=view if view in ("tiles", "table") else "tiles")


def save_gui_settings(paths: Paths, settings: GuiSettings) -> None:
    store = qsettings(paths)
    store.setValue("theme", settings.theme)
    store.setValue("device_view", settings.device_view)
    store.sync()


def save_window_state(paths: Paths, geometry: QByteArray, state: QByteArray) -> None:
    store = qsettings(paths)
    store.setValue("window/geometry", geometry)
    store.setValue("window/state", state)
    store.sync()


def load_window_state(paths: Paths) -> tuple[QByteArray | None, QByteArray | None]:
    store = qsettings(paths)
    geometry = store.value("window/geometry")
    state = store.value("window/state")
    return (geometry if isinstance(geometry, QByteArray) else None,
            state if isinstance(state, QByteArray) else None)
