"""The New task dialog: a kind, its generated payload form, and where/how to run it.

Nothing is enqueued until the spec passes ``engine.validate``; a refusal is
shown under the field it names and the dialog stays open. The history pane
opens this dialog with ``initial=`` to clone and edit a past task.
"""

from __future__ import annotations

import getpass
import time
from typing import Any

import shiboken6
from PySide6.QtCore import QDateTime, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.enums import Priority, TargetKind
from app.core.errors import ValidationError
from app.core.payload import Schema
from app.core.records import TaskRecord
from app.core.taskspec import MAX_ATTEMPTS_LIMIT, MAX_TIMEOUT_S, TaskSpec
from app.gui.bridge import EngineBridge
from app.gui.dialogs.payload_editor import ErrorLabel, PayloadEditor
from app.gui.dialogs.target_editor import TargetEditor
from app.gui.panes.loader import StoreLoader


def _with_error(widget: QWidget, error: ErrorLabel) -> QWidget:
    box = QWidget(widget.parentWidget())
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(2)
    layout.addWidget(widget)
    layout.addWidget(error)
    return box


class NewTaskDialog(QDialog):
    """Compose, validate and submit one task.

    Signals:
        submitted(object): the stored TaskRecord, after a successful submit.
    """

    submitted = Signal(object)

    def __init__(self, bridge: EngineBridge, parent: QWidget | None = None, *,
                 initial: TaskSpec | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.engine = bridge.engine
        self.errors: dict[str, ErrorLabel] = {}
        self.payload_editor: PayloadEditor | None = None
        self._kinds = {d["name"]: d for d in self.engine.registry.describe_all()}
        self._submitting = False
        self.setWindowTitle("Clone task" if initial else "New task")
        self._setup_ui()
        self.target_editor.set_devices(self._device_views())
        self._queues = StoreLoader(self.engine.store, _queue_names, parent=self)
        self._queues.loaded.connect(self._on_queues_loaded)
        self._queues.request()
        if initial is not None:
            self.set_spec(initial)
        else:
            self._on_kind_box_changed()

    # -- public API -------------------------------------------------------------------
    def set_spec(self, spec: TaskSpec) -> None:
        """Fill every field from ``spec`` (clone and edit)."""
        index = self.kind_box.findData(spec.kind)
        if index < 0:
            self.kind_box.addItem(f"{spec.kind} (not installed)", spec.kind)
            index = self.kind_box.count() - 1
        self.kind_box.setCurrentIndex(index)
        self._on_kind_box_changed()
        if self.payload_editor is not None:
            self.payload_editor.set_payload(dict(spec.payload))
        self.target_editor.set_target(spec.target)
        self.set_queue(spec.queue)
        self.priority_box.setCurrentIndex(self.priority_box.findData(int(spec.priority)))
        self.attempts.setValue(spec.max_attempts)
        self.timeout.setValue(float(spec.timeout_s))
        self.dedupe.setText(spec.dedupe_key or "")
        self.not_before_check.setChecked(spec.not_before is not None)
        if spec.not_before is not None:
            self.not_before.setDateTime(QDateTime.fromSecsSinceEpoch(int(spec.not_before)))

    def set_queue(self, name: str) -> None:
        self.queue_box.setCurrentText(name)

    def spec(self) -> TaskSpec:
        """The task as entered (not yet validated).

        Raises:
            ValidationError: an input cannot even form a spec (bad JSON, bad target…).
        """
        return self._spec_with(self.payload_editor.payload() if self.payload_editor else {})

    def validate(self) -> TaskSpec | None:
        """Validate what is entered; show the first problem inline. None when refused."""
        self.clear_errors()
        try:
            payload = self.payload_editor.payload() if self.payload_editor else {}
        except ValidationError as exc:
            self._show_error(exc, task_level=False)
            return None
        try:
            spec = self._spec_with(payload)
            spec.validated()
        except ValidationError as exc:
            self._show_error(exc, task_level=True)
            return None
        try:
            return self.engine.validate(spec)
        except ValidationError as exc:
            # The registry names "kind" and "target" for the task, anything else is
            # a payload field (a payload may have its own "timeout_s").
            self._show_error(exc, task_level=exc.field in ("kind", "target"))
            return None

    def clear_errors(self) -> None:
        for label in self.errors.values():
            label.setVisible(False)
        self.general_error.setVisible(False)
        if self.payload_editor is not None:
            self.payload_editor.clear_errors()

    def error_text(self) -> str:
        """Every visible error message (for tests and accessibility)."""
        labels = [*self.errors.values(), self.general_error]
        if self.payload_editor is not None:
            labels += [e.error for e in self.payload_editor.fields.values()]
            labels.append(self.payload_editor.error)
        return "\n".join(label.text() for label in labels if not label.isHidden())

    # -- building -----------------------------------------------------------------------
    def _setup_ui(self) -> None:
        layout = QVBoxLayout(self)
        top = QFormLayout()
        self.kind_box = QComboBox(self)
        for name, info in self._kinds.items():
            title = info.get("title") or name
            self.kind_box.addItem(f"{title} \u2014 {name}" if title != name else name, name)
            self.kind_box.setItemData(self.kind_box.count() - 1, info.get("description", ""),
                                      Qt.ItemDataRole.ToolTipRole)
        self.kind_box.currentIndexChanged.connect(self._on_kind_box_changed)
        top.addRow("Kind", self._field("kind", self.kind_box))
        self.description = QLabel(self)
        self.description.setWordWrap(True)
        top.addRow("", self.description)
        layout.addLayout(top)

        payload_box = QGroupBox("Payload", self)
        self.payload_layout = QVBoxLayout(payload_box)
        self.raw_toggle = QCheckBox("Edit as JSON", payload_box)
        self.raw_toggle.setToolTip("Show and edit the payload as one JSON object")
        self.raw_toggle.toggled.connect(self._on_raw_toggle_toggled)
        self.payload_layout.addWidget(self.raw_toggle)
        layout.addWidget(payload_box)

        how = QGroupBox("Where and how", self)
        form = QFormLayout(how)
        self.target_editor = TargetEditor(how)
        form.addRow("Target", self._field("target", self.target_editor))
        self.queue_box = QComboBox(how)
        self.queue_box.setEditable(True)
        self.queue_box.addItem("default")
        self.queue_box.setToolTip("Named queue; a new name creates the queue")
        form.addRow("Queue", self._field("queue", self.queue_box))
        self.priority_box = QComboBox(how)
        for priority in reversed(Priority):
            self.priority_box.addItem(priority.label, int(priority))
        self.priority_box.setCurrentIndex(self.priority_box.findData(int(Priority.NORMAL)))
        form.addRow("Priority", self._field("priority", self.priority_box))
        self.attempts = QSpinBox(how)
        self.attempts.setRange(1, MAX_ATTEMPTS_LIMIT)
        self.attempts.setValue(3)
        self.attempts.setToolTip("Attempts before the task is given up (dead)")
        form.addRow("Max attempts", self._field("max_attempts", self.attempts))
        self.timeout = QDoubleSpinBox(how)
        self.timeout.setRange(0.1, MAX_TIMEOUT_S)
        self.timeout.setDecimals(1)
        self.timeout.setValue(300.0)
        self.timeout.setSuffix(" s")
        self.timeout.setToolTip("Each attempt is stopped after this long")
        form.addRow("Timeout", self._field("timeout_s", self.timeout))
        self.dedupe = QLineEdit(how)
        self.dedupe.setPlaceholderText("optional lock name, e.g. capture:serial=ABC")
        self.dedupe.setToolTip("While another task holds this lock, this one is skipped")
        form.addRow("Dedupe key", self._field("dedupe_key", self.dedupe))
        row = QWidget(how)
        row_layout = QHBoxLayout(row)
        row_layout.setContentsMargins(0, 0, 0, 0)
        self.not_before_check = QCheckBox("Not before", row)
        self.not_before = QDateTimeEdit(QDateTime.fromSecsSinceEpoch(int(time.time()) + 600),
                                        row)
        self.not_before.setCalendarPopup(True)
        self.not_before.setDisplayFormat("yyyy-MM-dd HH:mm:ss")
        self.not_before.setEnabled(False)
        self.not_before.setToolTip("Local time before which the task is not started")
        self.not_before_check.toggled.connect(self.not_before.setEnabled)
        row_layout.addWidget(self.not_before_check)
        row_layout.addWidget(self.not_before, 1)
        form.addRow("Schedule", self._field("not_before", row))
        layout.addWidget(how)

        self.general_error = ErrorLabel(self)
        layout.addWidget(self.general_error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.submit_button = self.buttons.addButton(
            "Enqueue", QDialogButtonBox.ButtonRole.AcceptRole)
        self.submit_button.setDefault(True)
        self.submit_button.setToolTip("Validate and queue the task (Ctrl+Return)")
        self.submit_button.setShortcut("Ctrl+Return")
        self.buttons.accepted.connect(self._on_buttons_accepted)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    def _field(self, name: str, widget: QWidget) -> QWidget:
        self.errors[name] = ErrorLabel(self)
        return _with_error(widget, self.errors[name])

    # -- slots ------------------------------------------------------------------------
    def _on_kind_box_changed(self) -> None:
        name = str(self.kind_box.currentData() or "")
        info = self._kinds.get(name, {})
        self.description.setText(info.get("description") or
                                 ("This kind is not installed here." if name else ""))
        previous = self.payload_editor
        kept = {}
        if previous is not None:
            try:
                kept = previous.payload()
            except ValidationError:
                kept = {}
            self.payload_layout.removeWidget(previous)
            previous.hide()  # deletion is deferred; never show two forms at once
            previous.deleteLater()
        schema = self.engine.registry.get(name).schema if name in self.engine.registry else None
        editor = PayloadEditor(schema or Schema(allow_extra=True), self)
        keep = {k: v for k, v in kept.items() if k in editor.fields}
        if keep:
            editor.set_payload(keep)
        if self.raw_toggle.isChecked() or schema is None:
            editor.set_raw_mode(True)
        self.payload_editor = editor
        self.payload_layout.addWidget(editor)
        editor.show()  # at once, not at the layout's next queued pass
        targets = info.get("targets") or [t.value for t in TargetKind]
        self.target_editor.set_allowed(TargetKind(t) for t in targets)
        self.clear_errors()

    def _on_raw_toggle_toggled(self, raw: bool) -> None:
        if self.payload_editor is None:
            return
        try:
            self.payload_editor.set_raw_mode(raw)
        except ValidationError as exc:
            self.payload_editor.show_error("payload", exc.message)
            self.raw_toggle.blockSignals(True)
            self.raw_toggle.setChecked(not raw)
            self.raw_toggle.blockSignals(False)

    def _on_queues_loaded(self, names: list[str]) -> None:
        current = self.queue_box.currentText()
        for name in names:
            if self.queue_box.findText(name) < 0:
                self.queue_box.addItem(name)
        self.queue_box.setCurrentText(current)

    def _on_buttons_accepted(self) -> None:
        if self._submitting:
            return
        spec = self.validate()
        if spec is None:
            return
        self._submitting = True
        self.submit_button.setEnabled(False)
        task = self.bridge.run(self.engine.submit(spec), what="New task")
        task.add_done_callback(self._on_submit_done)

    def _on_submit_done(self, task: Any) -> None:
        if not shiboken6.isValid(self):
            return
        self._submitting = False
        self.submit_button.setEnabled(True)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            message = getattr(error, "message", None) or str(error)
            self.general_error.setText(f"Not enqueued: {message}")
            self.general_error.setVisible(True)
            return
        record: TaskRecord = task.result()
        self.submitted.emit(record)
        self.accept()

    # -- helpers ----------------------------------------------------------------------
    def _show_error(self, exc: ValidationError, *, task_level: bool) -> None:
        field = exc.field or ""
        if task_level and field in self.errors:
            self.errors[field].setText(exc.message)
            self.errors[field].setVisible(True)
        elif self.payload_editor is not None and (field == "payload" or not task_level):
            self.payload_editor.show_error(field, exc.message)
        else:
            self.general_error.setText(exc.message)
            self.general_error.setVisible(True)

    def _spec_with(self, payload: dict[str, Any]) -> TaskSpec:
        not_before = None
        if self.not_before_check.isChecked():
            not_before = float(self.not_before.dateTime().toSecsSinceEpoch())
        return TaskSpec(
            kind=str(self.kind_box.currentData() or ""),
            payload=payload,
            queue=self.queue_box.currentText().strip(),
            priority=Priority(int(self.priority_box.currentData())),
            target=self.target_editor.target(),
            not_before=not_before,
            max_attempts=self.attempts.value(),
            timeout_s=self.timeout.value(),
            dedupe_key=self.dedupe.text().strip() or None,
            source="gui",
            created_by=getpass.getuser(),
        )

    def _device_views(self) -> list[Any]:
        try:
            return list(self.engine.device_views())
        except AttributeError:  # the engine has not started: no device pool yet
            return []


def _queue_names() -> list[str]:
    from app.store import queues

    return [q.name for q in queues.list_queues()]
