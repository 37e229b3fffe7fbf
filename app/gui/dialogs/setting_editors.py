"""Editors generated from the settings registry (``app.core.settings.REGISTRY``).

Each ``SettingSpec`` gets the input its type calls for, bounded by the spec's
minimum and maximum, labelled with the spec's label and explained by its help
text; validation errors appear under the input.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import ValidationError
from app.core.settings import SettingSpec, get_spec
from app.gui.dialogs.payload_editor import ErrorLabel

INT_LIMIT = 2_147_483_647


def _range_text(spec: SettingSpec) -> str:
    if spec.minimum is None and spec.maximum is None:
        return ""
    low = "" if spec.minimum is None else f"{spec.minimum:g}"
    high = "" if spec.maximum is None else f"{spec.maximum:g}"
    return f"Allowed: {low} to {high}."


class SettingEditor(QWidget):
    """One setting: an input and an inline error line."""

    def __init__(self, spec: SettingSpec, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.input = self._build_input()
        tip = " ".join(p for p in (spec.help, _range_text(spec), f"({spec.key})") if p)
        self.input.setToolTip(tip)
        layout.addWidget(self.input)
        self.error = ErrorLabel(self)
        layout.addWidget(self.error)
        self.set_value(spec.default)

    def value(self) -> Any:
        widget = self.input
        if isinstance(widget, QCheckBox):
            return widget.isChecked()
        if isinstance(widget, QComboBox):
            return widget.currentText()
        if isinstance(widget, QSpinBox | QDoubleSpinBox):
            return widget.value()
        assert isinstance(widget, QLineEdit)
        return widget.text()

    def set_value(self, value: Any) -> None:
        widget = self.input
        if isinstance(widget, QCheckBox):
            widget.setChecked(bool(value))
        elif isinstance(widget, QComboBox):
            widget.setCurrentText(str(value))
        elif isinstance(widget, QSpinBox):
            widget.setValue(int(value))
        elif isinstance(widget, QDoubleSpinBox):
            widget.setValue(float(value))
        elif isinstance(widget, QLineEdit):
            widget.setText("" if value is None else str(value))

    def checked_value(self) -> Any:
        """The value coerced by the spec; shows and raises ValidationError if refused."""
        try:
            value = self.spec.validate(self.value())
        except ValidationError as exc:
            self.show_error(exc.message)
            raise
        self.show_error(None)
        return value

    def show_error(self, message: str | None) -> None:
        self.error.setText(message or "")
        self.error.setVisible(bool(message))

    def _build_input(self) -> QWidget:
        spec = self.spec
        if spec.type == "bool":
            return QCheckBox(self)
        if spec.type == "choice":
            box = QComboBox(self)
            box.addItems(list(spec.choices))
            return box
        if spec.type == "int":
            spin = QSpinBox(self)
            spin.setRange(int(spec.minimum) if spec.minimum is not None else -INT_LIMIT,
                          int(spec.maximum) if spec.maximum is not None else INT_LIMIT)
            return spin
        if spec.type == "float":
            double = QDoubleSpinBox(self)
            double.setDecimals(1)
            double.setRange(float(spec.minimum) if spec.minimum is not None else -1e9,
                            float(spec.maximum) if spec.maximum is not None else 1e9)
            return double
        line = QLineEdit(self)
        line.setPlaceholderText(str(spec.default or ""))
        return line


class SettingsForm(QWidget):
    """A form of registry settings, by key."""

    def __init__(self, keys: tuple[str, ...], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.editors: dict[str, SettingEditor] = {}
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        for key in keys:
            spec = get_spec(key)
            editor = SettingEditor(spec, self)
            self.editors[key] = editor
            self.form.addRow(spec.label, editor)

    def set_values(self, values: dict[str, Any]) -> None:
        for key, editor in self.editors.items():
            if key in values:
                editor.set_value(values[key])

    def checked_values(self) -> dict[str, Any]:
        """Every value coerced by its spec; raises the first ValidationError (all shown)."""
        out: dict[str, Any] = {}
        first: ValidationError | None = None
        for key, editor in self.editors.items():
            try:
                out[key] = editor.checked_value()
            except ValidationError as exc:
                first = first or exc
        if first is not None:
            raise first
        return out
