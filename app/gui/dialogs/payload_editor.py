"""A payload form generated from a task kind's ``Schema``, with a raw JSON mode.

Each ``Field`` type gets its editor (text, spin box with the field's limits,
check box, choice box, one-per-line list, JSON text, file path with a
non-modal Browse dialog). Required fields are marked with an asterisk, help
text becomes tooltip and placeholder, and :meth:`PayloadEditor.show_error`
puts a validation message right under the offending field.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QEvent
from PySide6.QtGui import QFont, QFontDatabase, QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import ValidationError
from app.core.payload import Field, Schema
from app.gui.theme import status_colors

INT_LIMIT = 2_147_483_647
FLOAT_LIMIT = 1e12
NOT_SET = "(default)"


class ErrorLabel(QLabel):
    """A hidden, word-wrapped message in the palette's failure colour (follows the theme)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setVisible(False)
        self.setObjectName("inlineError")
        self._recolour()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.ApplicationPaletteChange:
            self._recolour()
        super().changeEvent(event)

    def _recolour(self) -> None:
        palette = QPalette(QGuiApplication.palette())
        palette.setColor(QPalette.ColorRole.WindowText, status_colors(palette)["FAILURE"])
        self.setPalette(palette)


def error_label(parent: QWidget) -> ErrorLabel:
    return ErrorLabel(parent)


def monospace() -> QFont:
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


class FieldEditor(QWidget):
    """One payload field: its input widget and an inline error line."""

    def __init__(self, spec: Field, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        self._file_dialog: QFileDialog | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.input = self._build_input()
        tip = spec.help or spec.name
        if spec.required:
            tip += " (required)"
        self.input.setToolTip(tip)
        row = QHBoxLayout()
        row.addWidget(self.input, 1)
        if spec.type == "path":
            browse = QPushButton("Browse\u2026", self)
            browse.setToolTip("Choose a file on this computer")
            browse.clicked.connect(self._on_browse_clicked)
            row.addWidget(browse)
        layout.addLayout(row)
        self.error = error_label(self)
        layout.addWidget(self.error)
        self.set_value(spec.default)

    # -- values ----------------------------------------------------------------------
    def value(self) -> Any:
        """The field's value for the payload; ``None`` means "leave it out"."""
        spec, widget = self.spec, self.input
        if isinstance(widget, QCheckBox):
            return widget.isChecked()
        if isinstance(widget, QComboBox):
            data = widget.currentData()
            return None if data is None else spec.choices[int(data)]
        if isinstance(widget, QSpinBox | QDoubleSpinBox):
            if widget.value() == widget.minimum() and widget.specialValueText():
                return None
            return widget.value()
        if isinstance(widget, QPlainTextEdit):
            text = widget.toPlainText()
            if spec.type == "str_list":
                items = [line.strip() for line in text.splitlines() if line.strip()]
                return items if items or spec.required else None
            if not text.strip():
                return None
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValidationError(
                    f"payload field {spec.name!r} is not valid JSON: {exc.msg} "
                    f"(line {exc.lineno}, column {exc.colno})", field=spec.name) from None
        assert isinstance(widget, QLineEdit)
        text = widget.text()
        return text if text.strip() or spec.required else None

    def set_value(self, value: Any) -> None:
        widget = self.input
        if isinstance(widget, QCheckBox):
            widget.setChecked(bool(value))
        elif isinstance(widget, QComboBox):
            index = widget.findData(self.spec.choices.index(value)) if (
                value in self.spec.choices) else 0
            widget.setCurrentIndex(max(0, index))
        elif isinstance(widget, QSpinBox):
            number = isinstance(value, int | float) and not isinstance(value, bool)
            widget.setValue(int(value) if number else widget.minimum())
        elif isinstance(widget, QDoubleSpinBox):
            number = isinstance(value, int | float) and not isinstance(value, bool)
            widget.setValue(float(value) if number else widget.minimum())
        elif isinstance(widget, QPlainTextEdit):
            if self.spec.type == "str_list":
                items = value if isinstance(value, list | tuple) else []
                widget.setPlainText("\n".join(str(v) for v in items))
            else:
                widget.setPlainText("" if value is None else json.dumps(value, indent=2))
        elif isinstance(widget, QLineEdit):
            widget.setText("" if value is None else str(value))

    def show_error(self, message: str | None) -> None:
        self.error.setText(message or "")
        self.error.setVisible(bool(message))

    # -- building --------------------------------------------------------------------
    def _build_input(self) -> QWidget:
        spec = self.spec
        optional = not spec.required and spec.default is None
        if spec.type == "bool":
            return QCheckBox(self)
        if spec.choices:
            box = QComboBox(self)
            if optional:
                box.addItem(NOT_SET, None)
            for i, choice in enumerate(spec.choices):
                box.addItem(str(choice), i)
            return box
        if spec.type == "int":
            spin = QSpinBox(self)
            low = int(spec.min) if spec.min is not None else -INT_LIMIT + 1
            spin.setRange(low - 1 if optional else low,
                          int(spec.max) if spec.max is not None else INT_LIMIT)
            if optional:  # the value just below the minimum means "not set"
                spin.setSpecialValueText(NOT_SET)
            return spin
        if spec.type == "float":
            double = QDoubleSpinBox(self)
            double.setDecimals(3)
            floor = float(spec.min) if spec.min is not None else -FLOAT_LIMIT
            double.setRange(floor - 0.001 if optional else floor,
                            float(spec.max) if spec.max is not None else FLOAT_LIMIT)
            if optional:
                double.setSpecialValueText(NOT_SET)
            return double
        if spec.type in ("str_list", "json"):
            edit = QPlainTextEdit(self)
            edit.setTabChangesFocus(True)
            edit.setFont(monospace())
            edit.setFixedHeight(edit.fontMetrics().lineSpacing() * 4 + 12)
            edit.setPlaceholderText("One item per line" if spec.type == "str_list"
                                    else (spec.help or "JSON value"))
            return edit
        line = QLineEdit(self)
        line.setPlaceholderText(spec.help)
        if spec.max_length:
            line.setMaxLength(spec.max_length)
        return line

    def _on_browse_clicked(self) -> None:
        dialog = QFileDialog(self, f"Choose {self.spec.name}")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        if self.spec.name == "apk":
            dialog.setNameFilters(["Android packages (*.apk)", "All files (*)"])
        dialog.fileSelected.connect(self._on_file_dialog_file_selected)
        self._file_dialog = dialog
        dialog.open()

    def _on_file_dialog_file_selected(self, path: str) -> None:
        if isinstance(self.input, QLineEdit) and path:
            self.input.setText(path)


class PayloadEditor(QWidget):
    """A form for one kind's payload, switchable to raw JSON."""

    def __init__(self, schema: Schema, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.schema = schema
        self.fields: dict[str, FieldEditor] = {}
        self.stack = QStackedWidget(self)
        form_page = QWidget(self.stack)
        form = QFormLayout(form_page)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for spec in schema.fields:
            editor = FieldEditor(spec, form_page)
            self.fields[spec.name] = editor
            label = QLabel(f"{spec.name} *" if spec.required else spec.name, form_page)
            label.setToolTip(editor.input.toolTip())
            if spec.required:
                font = label.font()
                font.setBold(True)
                label.setFont(font)
            label.setBuddy(editor.input)
            form.addRow(label, editor)
        if not schema.fields:
            form.addRow(QLabel("This kind takes no payload.", form_page))
        self.raw = QPlainTextEdit(self.stack)
        self.raw.setFont(monospace())
        self.raw.setTabChangesFocus(True)
        self.raw.setPlaceholderText('{"field": "value"}')
        self.stack.addWidget(form_page)
        self.stack.addWidget(self.raw)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)
        self.error = error_label(self)
        layout.addWidget(self.error)
        self._extra: dict[str, Any] = {}

    @property
    def raw_mode(self) -> bool:
        return self.stack.currentIndex() == 1

    def set_raw_mode(self, raw: bool) -> None:
        """Switch between the form and raw JSON, carrying the values across.

        Raises:
            ValidationError: the current text does not parse; the mode stays.
        """
        if raw == self.raw_mode:
            return
        payload = self.payload()
        if raw:
            self.raw.setPlainText(json.dumps(payload, indent=2, ensure_ascii=False))
        else:
            self.set_payload(payload)
        self.stack.setCurrentIndex(1 if raw else 0)
        self.clear_errors()

    def payload(self) -> dict[str, Any]:
        """The payload as edited.

        Raises:
            ValidationError: a JSON field (or the raw text) does not parse.
        """
        if self.raw_mode:
            text = self.raw.toPlainText().strip() or "{}"
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"the payload is not valid JSON: {exc.msg} (line "
                                      f"{exc.lineno}, column {exc.colno})",
                                      field="payload") from None
            if not isinstance(value, dict):
                raise ValidationError("the payload must be a JSON object", field="payload")
            return value
        out = dict(self._extra)
        for name, editor in self.fields.items():
            value = editor.value()
            if value is not None:
                out[name] = value
        return out

    def set_payload(self, payload: dict[str, Any]) -> None:
        """Fill the editors; keys the schema does not know are kept as they are."""
        for name, editor in self.fields.items():
            editor.set_value(payload.get(name, editor.spec.default))
        self._extra = {k: v for k, v in payload.items() if k not in self.fields}
        if self.raw_mode or self._extra:
            self.raw.setPlainText(json.dumps(payload, indent=2, ensure_ascii=False))

    def show_error(self, field: str | None, message: str) -> None:
        """Show ``message`` under ``field``'s editor, or above the form if none matches."""
        self.clear_errors()
        editor = self.fields.get(field or "")
        if editor is not None and not self.raw_mode:
            editor.show_error(message)
            editor.input.setFocus()
            return
        self.error.setText(message)
        self.error.setVisible(True)

    def clear_errors(self) -> None:
        for editor in self.fields.values():
            editor.show_error(None)
        self.error.setVisible(False)
