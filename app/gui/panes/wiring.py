"""Widget wiring the panes share: actions with shortcuts, row tables, selections, menus.

Each pane used to spell these out itself; they are kept in one place so a pane's
shortcuts, tool tips and tables behave alike (and change together).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QMenu, QTableView, QWidget


def make_action(owner: QWidget, text: str, tip: str, slot: Callable[[], object],
                shortcut: QKeySequence | str = "", *,
                context: Qt.ShortcutContext = Qt.ShortcutContext.WidgetWithChildrenShortcut
                ) -> QAction:
    """An action of ``owner`` that calls ``slot()``; its shortcut, if any, is in the tip.

    The shortcut works while focus is inside ``owner`` (by default), so two panes
    can use the same keys.
    """
    action = QAction(text, owner)
    keys = QKeySequence(shortcut)
    if keys.isEmpty():
        action.setToolTip(tip)
    else:
        action.setToolTip(f"{tip} ({keys.toString()})")
        action.setShortcut(keys)
        action.setShortcutContext(context)
    # Called without ``checked``: slots such as setFocus() would take it as an argument.
    action.triggered.connect(lambda _checked=False: slot())
    owner.addAction(action)
    return action


def set_up_rows(view: QTableView, widths: Mapping[int, int] | None = None, *,
                row_padding: int = 8) -> None:
    """Give ``view`` the panes' table look: fixed-height rows without a row header,
    no wrapping, alternating colours, whole-row extended selection, the last
    column stretched, and these initial column widths.

    Fixed row heights keep scrolling cheap on large models (no per-row sizing).
    """
    rows = view.verticalHeader()
    rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    rows.setDefaultSectionSize(view.fontMetrics().height() + row_padding)
    rows.hide()
    view.setWordWrap(False)
    view.setAlternatingRowColors(True)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    view.horizontalHeader().setStretchLastSection(True)
    for column, width in (widths or {}).items():
        view.setColumnWidth(column, width)


def selected_records(view: QAbstractItemView, role: int) -> list[Any]:
    """What the selected rows of ``view`` hold under ``role`` (rows holding nothing skipped)."""
    rows = view.selectionModel().selectedRows()
    return [r for r in (index.data(role) for index in rows) if r is not None]


def popup_menu(menu: QMenu, anchor: QWidget, pos: QPoint) -> None:
    """Show ``menu`` at ``pos`` of ``anchor`` and delete it once closed.

    ``popup()``, never ``exec()``: a nested event loop would stall the qasync loop.
    """
    menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    menu.popup(anchor.mapToGlobal(pos))
