"""The device wall: tile data, its model, the tile painter and the wall view."""

from app.gui.tiles.delegate import TileDelegate
from app.gui.tiles.model import DeviceTile, DeviceTileModel, TileRole, format_elapsed
from app.gui.tiles.view import ACTIONS, TileWallView, apk_paths

__all__ = [
    "ACTIONS",
    "DeviceTile",
    "DeviceTileModel",
    "TileDelegate",
    "TileRole",
    "TileWallView",
    "apk_paths",
    "format_elapsed",
]
