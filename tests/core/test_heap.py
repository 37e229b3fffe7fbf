"""settle_heap leaves start-up's objects frozen and the collector on TaskDesk's
thresholds (checked in a fresh interpreter: it changes process-wide settings)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_settle_heap_freezes_start_up_objects_and_sets_the_thresholds() -> None:
    code = ("import gc; from app.core.heap import THRESHOLDS, settle_heap; "
            "before = gc.get_freeze_count(); settle_heap(); "
            "print(before, gc.get_freeze_count() > 1000, gc.get_threshold() == THRESHOLDS)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=60).stdout.split()
    assert out == ["0", "True", "True"]
