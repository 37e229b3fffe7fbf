"""The layering rule (docs/architecture.md): imports only point downwards.

- only ``app/gui`` imports PySide6 (or pyqtgraph/qasync, which pull Qt in);
- ``app/core`` and ``app/store`` import no upper layer and no event loop;
- ``app/engine`` imports no GUI.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"

QT_MODULES = ("PySide6", "pyqtgraph", "qasync", "shiboken6")
UPPER_FOR_PURE = ("app.gui", "app.engine", "app.devices", "app.agent", "app.cli", "asyncio")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _modules(sub: str) -> list[Path]:
    return sorted((APP / sub).rglob("*.py")) if sub else sorted(APP.rglob("*.py"))


def _starts(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("path", _modules(""), ids=lambda p: str(p.relative_to(APP)))
def test_qt_is_imported_only_in_gui(path: Path) -> None:
    if (APP / "gui") in path.parents:
        return
    bad = [n for n in _imports(path) if _starts(n, QT_MODULES)]
    assert not bad, f"{path.relative_to(APP)} imports {bad}: Qt belongs in app/gui only"


@pytest.mark.parametrize(
    "path", _modules("core") + _modules("store"), ids=lambda p: str(p.relative_to(APP))
)
def test_core_and_store_are_pure(path: Path) -> None:
    bad = [n for n in _imports(path) if _starts(n, UPPER_FOR_PURE)]
    assert not bad, f"{path.relative_to(APP)} imports {bad}: core/store must stay pure"


@pytest.mark.parametrize("path", _modules("engine"), ids=lambda p: str(p.relative_to(APP)))
def test_engine_has_no_gui(path: Path) -> None:
    bad = [n for n in _imports(path) if _starts(n, ("app.gui",))]
    assert not bad, f"{path.relative_to(APP)} imports {bad}"


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    """Guard against a check that cannot fail."""
    sample = tmp_path / "x.py"
    sample.write_text("from PySide6 import QtCore\nimport asyncio\n")
    names = _imports(sample)
    assert _starts(names[0], QT_MODULES) and _starts(names[1], UPPER_FOR_PURE)
