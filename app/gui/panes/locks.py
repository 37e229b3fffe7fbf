"""The Locks pane: who holds what, for how long, and an audited force release.

Locks reload on lock events and every few seconds (a lock may expire or be
taken by another process without an event here); the TTL column counts down
locally every second.
"""

from __future__ import annotations

import getpass

from PySide6.QtCore import QItemSelection, QPoint, QSortFilterProxyModel, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QStackedWidget,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app.core.records import LockRecord
from app.gui.bridge import EngineBridge
from app.gui.panes.loader import StoreLoader, timer
from app.gui.panes.locks_model import RECORD_ROLE, SORT_ROLE, LockCol, LocksModel, format_ttl
from app.gui.panes.wiring import make_action, popup_menu, selected_records, set_up_rows

REFRESH_INTERVAL_MS = 5000
RELOAD_MIN_INTERVAL_MS = 250
EMPTY_TEXT = "No locks are held. Tasks with a dedupe key and held phones show up here."


class ForceReleaseDialog(QDialog):
    """Asks the operator to confirm a forced release, with an optional reason."""

    def __init__(self, locks: list[LockRecord], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.locks = locks
        self.setWindowTitle("Force release")
        self.setMinimumWidth(460)
        layout = QVBoxLayout(self)
        if len(locks) == 1:
            lock = locks[0]
            text = (f"Force release <b>{_escape(lock.name)}</b>?<br>It is held by "
                    f"{_escape(lock.owner)} ({lock.holder_kind.value}) and expires in "
                    f"{format_ttl(lock.remaining())}.")
        else:
            names = "<br>".join(_escape(lock.name) for lock in locks[:10])
            more = f"<br>\u2026 and {len(locks) - 10} more" if len(locks) > 10 else ""
            text = f"Force release these {len(locks)} locks?<br>{names}{more}"
        self.message = QLabel(text + "<br><br>Whatever holds it may still be running; the "
                              "release is recorded in the audit log.", self)
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        self.reason = QLineEdit(self)
        self.reason.setPlaceholderText("Reason (recorded in the audit log)")
        layout.addWidget(self.reason)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.confirm = buttons.addButton("Force release", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class LocksPane(QWidget):
    """Live locks with TTL countdown and force release."""

    def __init__(self, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.engine = bridge.engine
        self._actor = getpass.getuser()
        self.model = LocksModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)
        self._loader: StoreLoader | None = None
        self.confirm_dialog: ForceReleaseDialog | None = None
        self._setup_ui()
        self._tick = timer(self, 1000, self.model.tick)
        self._poll = timer(self, REFRESH_INTERVAL_MS, self.reload)
        bridge.locks_changed.connect(self.reload)

    # -- public API -------------------------------------------------------------------
    def engine_started(self) -> None:
        from app.store import locks

        self._loader = StoreLoader(self.engine.store, locks.list_locks,
                                   min_interval_ms=RELOAD_MIN_INTERVAL_MS, parent=self,
                                   shown_in=self)
        self._loader.loaded.connect(self._on_loader_loaded)
        self._loader.failed.connect(lambda message: self.bridge.error.emit(f"Locks: {message}"))
        self._tick.start()
        self._poll.start()
        self.reload()

    def reload(self) -> None:
        """Ask for fresh locks (coalesced; a hidden pane reloads when shown instead)."""
        if self._loader is not None:
            self._loader.request()

    def selected_locks(self) -> list[LockRecord]:
        return selected_records(self.view, RECORD_ROLE)

    def force_release_selected(self) -> ForceReleaseDialog | None:
        """Ask for confirmation, then force-release the selected locks."""
        chosen = self.selected_locks()
        if not chosen:
            return None
        dialog = ForceReleaseDialog(chosen, self)
        dialog.accepted.connect(lambda: self._release(chosen, dialog.reason.text().strip()))
        dialog.finished.connect(self._on_confirm_dialog_finished)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.confirm_dialog = dialog
        dialog.open()
        return dialog

    # -- building -----------------------------------------------------------------------
    def _setup_ui(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        bar = QToolBar(self)
        self.release_action = make_action(
            self, "Force release\u2026", "Free the selected locks whoever holds them (audited)",
            self.force_release_selected, QKeySequence(QKeySequence.StandardKey.Delete))
        self.refresh_action = make_action(self, "Refresh", "Reload the locks now", self.reload,
                                          QKeySequence(QKeySequence.StandardKey.Refresh))
        bar.addAction(self.release_action)
        bar.addAction(self.refresh_action)
        top = QHBoxLayout()
        top.addWidget(bar)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Filter by name, owner or note")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._on_search_text_changed)
        top.addWidget(self.search, 1)
        self.summary = QLabel(self)
        top.addWidget(self.summary)
        layout.addLayout(top)
        self.stack = QStackedWidget(self)
        self.view = self._build_view()
        self.stack.addWidget(self.view)
        self.empty_label = QLabel(EMPTY_TEXT, self)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.stack.addWidget(self.empty_label)
        layout.addWidget(self.stack, 1)
        self._update()

    def _build_view(self) -> QTableView:
        view = QTableView(self)
        view.setModel(self.proxy)
        view.setSortingEnabled(True)
        view.sortByColumn(LockCol.NAME, Qt.SortOrder.AscendingOrder)
        set_up_rows(view, {LockCol.NAME: 220, LockCol.HOLDER: 80, LockCol.OWNER: 220,
                           LockCol.ACQUIRED: 150, LockCol.EXPIRES: 90})
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(self._on_view_context_menu)
        view.selectionModel().selectionChanged.connect(self._on_view_selection_changed)
        return view

    # -- slots ------------------------------------------------------------------------
    def _on_loader_loaded(self, locks: list[LockRecord]) -> None:
        self.model.replace_rows(locks)
        self._update()

    def _on_confirm_dialog_finished(self, _result: int) -> None:
        self.confirm_dialog = None

    def _on_search_text_changed(self, text: str) -> None:
        self.proxy.setFilterFixedString(text)
        self._update()

    def _on_view_selection_changed(self, _selected: QItemSelection,
                                   _deselected: QItemSelection) -> None:
        self._update()

    def _on_view_context_menu(self, pos: QPoint) -> None:
        menu = QMenu(self)
        menu.addAction(self.release_action)
        menu.addAction(self.refresh_action)
        popup_menu(menu, self.view.viewport(), pos)

    # -- helpers ----------------------------------------------------------------------
    def _release(self, chosen: list[LockRecord], reason: str) -> None:
        why = reason or "forced from the console"
        for lock in chosen:
            self.bridge.run(self.engine.force_release_lock(lock.name, actor=self._actor,
                                                           reason=why),
                            what=f"force release {lock.name}")

    def _update(self) -> None:
        total, shown = self.model.rowCount(), self.proxy.rowCount()
        self.stack.setCurrentIndex(0 if total else 1)
        self.summary.setText(f"{total} lock{'s' if total != 1 else ''}" if shown == total
                             else f"{shown} of {total} locks")
        self.release_action.setEnabled(bool(self.selected_locks()))
