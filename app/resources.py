"""Finding bundled resources the same way from a source checkout and a frozen build.

Source: ``<repo>/resources``. PyInstaller one-folder build: ``sys._MEIPASS/resources``
(the spec copies the folder there). ``TASKDESK_RESOURCES`` overrides both.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def resources_dir() -> Path:
    override = os.environ.get("TASKDESK_RESOURCES")
    if override:
        return Path(override)
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parents[1] / "resources"


def resource(*parts: str) -> Path:
    """Path of a resource; raises FileNotFoundError with a clear message if missing."""
    path = resources_dir().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"resource {'/'.join(parts)} not found under {resources_dir()}")
    return path
