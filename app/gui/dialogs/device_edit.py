"""Edit a phone's nickname, tags and notes (or the shared tags of a selection).

Fields are checked as the operator types (the same rules the store applies),
and the engine's answer on Save is shown next to the field it names; the
dialog only closes once every phone was updated. Open it with ``open()``.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import re
from typing import Any

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import ValidationError
from app.core.targets import Target
from app.engine.bus import DeviceView
from app.gui.bridge import EngineBridge
from app.gui.theme import status_colors
from app.store.devices import MAX_NICKNAME, MAX_NOTES, MAX_TAGS

log = logging.getLogger(__name__)

_SPLIT = re.compile(r"[,\s]+")


def parse_tags(text: str) -> tuple[str, ...]:
    """Tags typed as "lab-a, camera 5g": split on commas and spaces, checked, sorted.

    Raises:
        ValidationError: a tag with characters a selector cannot name (field "tags").
    """
    words = [w for w in _SPLIT.split(text) if w]
    if not words:
        return ()
    try:
        tags = Target.selector(tags=words).tags
    except ValidationError as exc:
        raise ValidationError(exc.message, field="tags") from None
    if len(tags) > MAX_TAGS:
        raise ValidationError(f"at most {MAX_TAGS} tags", field="tags")
    return tags


class DeviceEditDialog(QDialog):
    """Nickname, tags and notes of one phone; shared tags of several."""

    def __init__(self, bridge: EngineBridge, views: list[DeviceView],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if not views:
            raise ValueError("DeviceEditDialog needs at least one device")
        self._bridge = bridge
        self._views = views
        self._single = len(views) == 1
        self._common = set.intersection(*(set(v.record.tags) for v in views))
        self._saving: asyncio.Task[None] | None = None
        self._setup_ui()
        self._on_field_edited()

    # -- public API ----------------------------------------------------------------------
    def errors(self) -> dict[str, str]:
        """The inline messages shown now, by field ("" for the general one)."""
        return {name: label.text() for name, label in self._error_labels.items()
                if label.isVisible() and label.text()}

    def save(self) -> asyncio.Task[None] | None:
        """Check the fields and apply them; returns the running save, if it started."""
        if self._saving is not None and not self._saving.done():
            return self._saving
        try:
            changes = self._changes()
        except ValidationError as exc:
            self._show_error(exc.field or "", exc.message)
            return None
        self.buttons.setEnabled(False)
        self._saving = asyncio.ensure_future(self._apply(changes))
        return self._saving

    # -- set-up and slots ---------------------------------------------------------------
    def _setup_ui(self) -> None:
        first = self._views[0]
        self.setWindowTitle(f"Edit {first.record.nickname or first.record.model or first.serial}"
                            if self._single else f"Edit {len(self._views)} devices")
        self.nickname = QLineEdit(first.record.nickname if self._single else "")
        self.nickname.setMaxLength(MAX_NICKNAME + 1)  # one over: the check explains the limit
        self.nickname.setPlaceholderText("e.g. Shelf 2, left" if self._single
                                         else "one device at a time")
        self.nickname.setEnabled(self._single)
        self.tags = QLineEdit(", ".join(sorted(first.record.tags if self._single
                                               else self._common)))
        self.tags.setPlaceholderText("e.g. camera, lab-a (letters, digits, _ . -)")
        self.tags.setToolTip("Tasks can target phones by tag (tags:camera)")
        self.notes = QPlainTextEdit(first.record.notes if self._single else "")
        self.notes.setPlaceholderText("Anything the next operator should know"
                                      if self._single else "one device at a time")
        self.notes.setEnabled(self._single)
        self.notes.setTabChangesFocus(True)
        self._error_labels = {name: self._error_label() for name in
                              ("nickname", "tags", "notes", "")}
        form = QFormLayout()
        form.addRow("Nickname", self.nickname)
        form.addRow("", self._error_labels["nickname"])
        form.addRow("Tags", self.tags)
        form.addRow("", self._error_labels["tags"])
        if not self._single:
            hint = QLabel(f"Tags shared by all {len(self._views)} devices; "
                          "tags only some of them carry are kept.")
            hint.setWordWrap(True)
            form.addRow("", hint)
        form.addRow("Notes", self.notes)
        form.addRow("", self._error_labels["notes"])
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._on_buttons_accepted)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self._error_labels[""])
        layout.addWidget(self.buttons)
        self.nickname.textChanged.connect(self._on_field_edited)
        self.tags.textChanged.connect(self._on_field_edited)
        self.notes.textChanged.connect(self._on_field_edited)
        self.resize(460, self.sizeHint().height())

    def _error_label(self) -> QLabel:
        label = QLabel()
        label.setWordWrap(True)
        label.hide()
        return label

    def _on_field_edited(self) -> None:
        for label in self._error_labels.values():
            label.hide()
        try:
            self._changes()
        except ValidationError as exc:
            self._show_error(exc.field or "", exc.message)
            self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(False)
            return
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(True)

    def _on_buttons_accepted(self) -> None:
        self.save()

    # -- internals -------------------------------------------------------------------------
    def _changes(self) -> dict[str, dict[str, Any]]:
        """Per serial, the fields to send to ``engine.update_device``."""
        tags = parse_tags(self.tags.text())
        if self._single:
            nickname = self.nickname.text().strip()
            if len(nickname) > MAX_NICKNAME or not nickname.isprintable():
                raise ValidationError(f"up to {MAX_NICKNAME} printable characters",
                                      field="nickname")
            notes = self.notes.toPlainText()
            if len(notes) > MAX_NOTES:
                raise ValidationError(f"notes are limited to {MAX_NOTES} characters",
                                      field="notes")
            return {self._views[0].serial: {"nickname": nickname, "tags": list(tags),
                                            "notes": notes}}
        out = {}
        for view in self._views:
            kept = set(view.record.tags) - self._common  # tags only this phone carries
            out[view.serial] = {"tags": sorted(kept | set(tags))}
        return out

    async def _apply(self, changes: dict[str, dict[str, Any]]) -> None:
        engine = self._bridge.engine
        try:
            for serial, fields in changes.items():
                await engine.update_device(serial, actor=getpass.getuser(), **fields)
        except ValidationError as exc:
            self._show_error(exc.field or "", exc.message)
        except Exception as exc:  # storage or unknown device: say it here, keep the input
            log.warning("device edit failed: %s", exc)
            self._show_error("", getattr(exc, "message", None) or str(exc))
        else:
            self.accept()
            return
        finally:
            self.buttons.setEnabled(True)

    def _show_error(self, field: str, message: str) -> None:
        label = self._error_labels.get(field, self._error_labels[""])
        palette = self.palette()  # coloured when shown, so a theme switch is honoured
        palette.setColor(QPalette.ColorRole.WindowText, status_colors(palette)["FAILURE"])
        label.setPalette(palette)
        label.setText(message)
        label.show()
