"""Where a new task may run: any phone, one phone, phones by tags/model, an agent, the host.

The choices are limited to the targets the chosen kind accepts; the phone
picker lists the engine's devices with their dispatch state, and keeps a
serial that is not connected right now (a cloned task may name one) so the
operator sees it rather than silently losing it.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.enums import TargetKind
from app.core.errors import ValidationError
from app.core.targets import Target
from app.engine.bus import DeviceView

LABELS = {
    TargetKind.ANY: "Any idle phone",
    TargetKind.DEVICE: "One phone",
    TargetKind.SELECTOR: "Phones with tags / model",
    TargetKind.AGENT: "Remote agent",
    TargetKind.HOST: "This computer",
}
ORDER = (TargetKind.ANY, TargetKind.DEVICE, TargetKind.SELECTOR, TargetKind.AGENT,
         TargetKind.HOST)


def device_label(view: DeviceView) -> str:
    record = view.record
    name = " ".join(p for p in (record.model, f"({record.nickname})" if record.nickname else "")
                    if p)
    return f"{record.serial} \u2014 {name or 'unknown model'} \u00b7 {view.dispatch}"


class TargetEditor(QWidget):
    """A target kind box plus the inputs that kind needs.

    Signals:
        changed(): the operator changed the target.
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind_box = QComboBox(self)
        self.kind_box.setToolTip("Where the task may run")
        self.stack = QStackedWidget(self)
        self.pages: dict[TargetKind, int] = {}
        self._add_page(TargetKind.ANY, self._note("The first idle phone takes it."))
        self.device_box = QComboBox(self)
        self.device_box.setToolTip("The phone that must run the task")
        self._add_page(TargetKind.DEVICE, self.device_box)
        selector = QWidget(self)
        form = QFormLayout(selector)
        form.setContentsMargins(0, 0, 0, 0)
        self.tags = QLineEdit(selector)
        self.tags.setPlaceholderText("camera, lab-a")
        self.tags.setToolTip("Phones carrying every one of these tags (comma-separated)")
        self.model = QLineEdit(selector)
        self.model.setPlaceholderText("Pixel 7")
        self.model.setToolTip("Phones of this model (case-insensitive)")
        form.addRow("Tags", self.tags)
        form.addRow("Model", self.model)
        self._add_page(TargetKind.SELECTOR, selector)
        self.agent = QLineEdit(self)
        self.agent.setPlaceholderText("agent uuid")
        self._add_page(TargetKind.AGENT, self.agent)
        self._add_page(TargetKind.HOST, self._note("Runs on the computer TaskDesk runs on."))
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.kind_box)
        row.addWidget(self.stack, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        self.kind_box.currentIndexChanged.connect(self._on_kind_box_changed)
        for edit in (self.tags, self.model, self.agent):
            edit.textEdited.connect(self.changed)
        self.device_box.currentIndexChanged.connect(self.changed)
        self.set_allowed(ORDER)

    # -- public API -------------------------------------------------------------------
    def set_allowed(self, kinds: Iterable[TargetKind]) -> None:
        """Offer only these target kinds (keeps the current one if still allowed)."""
        allowed = set(kinds)
        current = self.current_kind()
        self.kind_box.blockSignals(True)
        self.kind_box.clear()
        for kind in ORDER:
            if kind in allowed:
                self.kind_box.addItem(LABELS[kind], kind.value)
        index = self.kind_box.findData(current.value) if current else -1
        self.kind_box.setCurrentIndex(max(0, index))
        self.kind_box.blockSignals(False)
        self._on_kind_box_changed()

    def set_devices(self, views: Iterable[DeviceView]) -> None:
        current = self.device_box.currentData()
        self.device_box.clear()
        for view in sorted(views, key=lambda v: v.serial):
            self.device_box.addItem(device_label(view), view.serial)
        if current:
            self._select_serial(str(current))

    def current_kind(self) -> TargetKind | None:
        value = self.kind_box.currentData()
        return TargetKind(value) if value else None

    def target(self) -> Target:
        """The target as entered.

        Raises:
            ValidationError: (field ``target``) the inputs do not make a target.
        """
        kind = self.current_kind()
        if kind is None:
            raise ValidationError("this task kind accepts no target", field="target")
        if kind is TargetKind.DEVICE:
            serial = self.device_box.currentData()
            if not serial:
                raise ValidationError("choose a phone (none is connected)", field="target")
            return Target.device(str(serial))
        if kind is TargetKind.SELECTOR:
            return Target.selector(self.tags.text().split(","), self.model.text() or None)
        if kind is TargetKind.AGENT:
            return Target.agent(self.agent.text())
        return Target.host() if kind is TargetKind.HOST else Target.any()

    def set_target(self, target: Target) -> None:
        index = self.kind_box.findData(target.kind.value)
        if index < 0:  # not allowed for this kind: offer it anyway so it is visible
            self.kind_box.addItem(LABELS[target.kind], target.kind.value)
            index = self.kind_box.count() - 1
        self.kind_box.setCurrentIndex(index)
        if target.kind is TargetKind.DEVICE and target.serial:
            self._select_serial(target.serial)
        elif target.kind is TargetKind.SELECTOR:
            self.tags.setText(", ".join(target.tags))
            self.model.setText(target.model or "")
        elif target.kind is TargetKind.AGENT:
            self.agent.setText(target.agent_uuid or "")

    # -- internals --------------------------------------------------------------------
    def _add_page(self, kind: TargetKind, widget: QWidget) -> None:
        self.pages[kind] = self.stack.addWidget(widget)

    def _note(self, text: str) -> QLabel:
        label = QLabel(text, self)
        label.setEnabled(False)  # the disabled text colour reads as a caption
        return label

    def _select_serial(self, serial: str) -> None:
        index = self.device_box.findData(serial)
        if index < 0:
            self.device_box.addItem(f"{serial} \u2014 not connected", serial)
            index = self.device_box.count() - 1
        self.device_box.setCurrentIndex(index)

    def _on_kind_box_changed(self) -> None:
        kind = self.current_kind()
        if kind is not None:
            self.stack.setCurrentIndex(self.pages[kind])
            # A stacked widget is as tall as its tallest page; size to the shown one.
            for index in range(self.stack.count()):
                policy = (QSizePolicy.Policy.Preferred if index == self.pages[kind]
                          else QSizePolicy.Policy.Ignored)
                page = self.stack.widget(index)
                if page is not None:
                    page.setSizePolicy(policy, policy)
            self.stack.adjustSize()
        self.changed.emit()
