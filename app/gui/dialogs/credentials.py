"""The Credentials page: set or clear each secret of the settings registry.

Values are typed into password fields, handed to :class:`SecretStore` off the
GUI thread, and never shown again: the page only says whether a secret is set
and where it is kept. Without a secure keyring it says plainly that a secret
lives in memory for this session only and is never written to disk.
"""

from __future__ import annotations

import getpass
from typing import Any

import shiboken6
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.settings import get_spec
from app.engine.secrets import SecretStatus, SecretStore
from app.gui.bridge import EngineBridge
from app.gui.dialogs.payload_editor import ErrorLabel

SESSION_ONLY = ("No secure keyring is available on this computer ({backend}). A secret you "
                "set here is kept in memory for this session only and is never written to "
                "disk: enter it again after TaskDesk restarts.")
IN_KEYRING = "Secrets are stored in the system keyring: {backend}."


def _audit_secret(actor: str, action: str, name: str) -> None:
    from app.store.audit import audit

    audit(actor, action, name)  # the name only, never the value


class SecretRow:
    """The widgets of one secret."""

    def __init__(self, key: str, parent: QWidget) -> None:
        self.key = key
        spec = get_spec(key)
        self.label = QLabel(spec.label, parent)
        self.label.setToolTip(f"Keyring entry {spec.keyring_entry!r}")
        self.state = QLabel("checking\u2026", parent)
        self.edit = QLineEdit(parent)
        self.edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.edit.setPlaceholderText("new value")
        self.edit.setToolTip(spec.help or f"Type a new {spec.label}, then Set")
        self.set_button = QPushButton("Set", parent)
        self.clear_button = QPushButton("Clear", parent)
        self.clear_button.setToolTip(f"Forget the {spec.label}")
        self.error = ErrorLabel(parent)


class CredentialsPage(QWidget):
    """Set/clear secrets and say where they are kept."""

    def __init__(self, bridge: EngineBridge, secrets: SecretStore, keys: tuple[str, ...],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.secrets = secrets
        self.rows: dict[str, SecretRow] = {}
        layout = QVBoxLayout(self)
        self.where = QLabel(self)
        self.where.setWordWrap(True)
        layout.addWidget(self.where)
        grid = QGridLayout()
        for line, key in enumerate(keys):
            row = SecretRow(key, self)
            self.rows[key] = row
            grid.addWidget(row.label, line * 2, 0)
            grid.addWidget(row.state, line * 2, 1)
            grid.addWidget(row.edit, line * 2, 2)
            grid.addWidget(row.set_button, line * 2, 3)
            grid.addWidget(row.clear_button, line * 2, 4)
            grid.addWidget(row.error, line * 2 + 1, 2, 1, 3)
            row.set_button.clicked.connect(lambda _=False, k=key: self.set_secret(k))
            row.clear_button.clicked.connect(lambda _=False, k=key: self.clear_secret(k))
            row.edit.returnPressed.connect(lambda k=key: self.set_secret(k))
        grid.setColumnStretch(2, 1)
        layout.addLayout(grid)
        layout.addStretch(1)
        self._show_status(secrets.status())
        for key in keys:
            self._check(key)

    # -- public API -------------------------------------------------------------------
    def set_secret(self, key: str) -> None:
        row = self.rows[key]
        value = row.edit.text()
        if not value:
            row.error.setText("Type a value first (Clear removes the secret).")
            row.error.setVisible(True)
            return
        row.error.setVisible(False)
        row.edit.clear()  # the value lives on only in the secret store
        row.state.setText("saving\u2026")
        task = self.bridge.run(self.secrets.set(key, value), what=f"set {key}")
        task.add_done_callback(lambda t: self._on_set_done(key, t))

    def clear_secret(self, key: str) -> None:
        row = self.rows[key]
        row.error.setVisible(False)
        row.state.setText("clearing\u2026")
        task = self.bridge.run(self.secrets.delete(key), what=f"clear {key}")
        task.add_done_callback(lambda t: self._on_cleared(key, t))

    # -- callbacks ----------------------------------------------------------------------
    def _on_set_done(self, key: str, task: Any) -> None:
        if not shiboken6.isValid(self) or task.cancelled():
            return
        row = self.rows[key]
        if task.exception() is not None:
            error = task.exception()
            row.error.setText(getattr(error, "message", None) or str(error))
            row.error.setVisible(True)
            self._check(key)
            return
        status: SecretStatus = task.result()
        self._show_status(status)
        row.state.setText("set" if status.persistent else "set (this session only)")
        self.bridge.engine.store.submit(_audit_secret, getpass.getuser(), "secret.set", key)

    def _on_cleared(self, key: str, task: Any) -> None:
        if not shiboken6.isValid(self) or task.cancelled():
            return
        if task.exception() is None:
            self.rows[key].state.setText("not set")
            self.bridge.engine.store.submit(_audit_secret, getpass.getuser(), "secret.clear",
                                            key)
        else:
            self._check(key)

    def _check(self, key: str) -> None:
        task = self.bridge.run(self.secrets.get(key), what=f"read {key}")
        task.add_done_callback(lambda t: self._on_checked(key, t))

    def _on_checked(self, key: str, task: Any) -> None:
        if not shiboken6.isValid(self) or task.cancelled():
            return
        state = self.rows[key].state
        if task.exception() is not None:
            state.setText("unknown")
        elif not task.result():
            state.setText("not set")
        else:
            state.setText("set" if self.secrets.persistent else "set (this session only)")

    def _show_status(self, status: SecretStatus) -> None:
        template = IN_KEYRING if status.persistent else SESSION_ONLY
        text = template.format(backend=status.backend)
        if status.persistent is False and self.secrets.is_secure():
            text = status.message + " They are never written to disk."
        self.where.setText(text)
