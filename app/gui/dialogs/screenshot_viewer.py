"""A window showing one phone's screenshot, with Save…, Copy and Take again.

The PNG bytes are kept as the phone sent them, so Save writes exactly what
``screencap -p`` produced. The save dialog is a non-modal ``QFileDialog``
(``open()`` + ``fileSelected``): a static ``getSaveFileName`` would nest an
event loop under qasync.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

MAX_INITIAL_HEIGHT = 760


class ScreenshotViewer(QWidget):
    """Shows a PNG; the operator can save it, copy it, or ask for a fresh one.

    Signals:
        retake_requested(str): the serial whose screen should be captured again;
            whoever opened the viewer answers with :meth:`set_png`.
        saved(str): the path a copy was written to.
    """

    retake_requested = Signal(str)
    saved = Signal(str)

    def __init__(self, png: bytes, *, serial: str, title: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.serial = serial
        self._name = title or serial
        self._png = b""
        self._pixmap = QPixmap()
        self._dialog: QFileDialog | None = None
        self._setup_ui()
        self.set_png(png)

    # -- public API ----------------------------------------------------------------------
    def png(self) -> bytes:
        return self._png

    def pixmap(self) -> QPixmap:
        return self._pixmap

    def set_png(self, png: bytes) -> None:
        """Show a new capture (the answer to ``retake_requested``)."""
        pixmap = QPixmap()
        if not pixmap.loadFromData(png, "PNG"):
            self.show_message(f"Not a PNG image ({len(png)} bytes)")
            return
        self._png, self._pixmap = png, pixmap
        self.retake_button.setEnabled(True)
        self.save_button.setEnabled(True)
        self.copy_button.setEnabled(True)
        self._render()
        self.show_message(f"{pixmap.width()} \u00d7 {pixmap.height()} px, "
                          f"{len(png) / 1024:.0f} KiB, taken {time.strftime('%H:%M:%S')}")

    def show_message(self, text: str) -> None:
        self.status.setText(text)

    def save_to(self, path: str | Path) -> None:
        """Write the PNG as captured; a failure is shown in the window."""
        target = Path(path)
        if target.suffix.lower() != ".png":
            target = target.with_suffix(target.suffix + ".png")
        try:
            target.write_bytes(self._png)
        except OSError as exc:
            self.show_message(f"Could not save: {exc.strerror or exc}")
            return
        self.show_message(f"Saved to {target}")
        self.saved.emit(str(target))

    def open_save_dialog(self) -> QFileDialog:
        """The non-modal Save dialog (opened; returned for tests)."""
        dialog = QFileDialog(self, "Save screenshot", str(Path.home() / self.default_name()),
                             "PNG images (*.png)")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("png")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(self._on_dialog_file_selected)
        self._dialog = dialog
        dialog.open()
        return dialog

    def default_name(self) -> str:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.serial).strip("_") or "phone"
        return f"screenshot-{safe}-{time.strftime('%Y%m%d-%H%M%S')}.png"

    # -- set-up and slots ---------------------------------------------------------------
    def _setup_ui(self) -> None:
        self.setWindowTitle(f"Screenshot \u2014 {self._name}")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.image = QLabel()
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidget(self.image)
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.scroll_area.viewport().installEventFilter(self)
        self.actual_size = QCheckBox("Actual size")
        self.actual_size.setToolTip("Show every pixel instead of fitting the window")
        self.actual_size.toggled.connect(self._on_actual_size_toggled)
        self.save_button = QPushButton("Save\u2026")
        self.save_button.setToolTip("Save the PNG (Ctrl+S)")
        self.save_button.clicked.connect(self._on_save_button_clicked)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the image to the clipboard (Ctrl+C)")
        self.copy_button.clicked.connect(self._on_copy_button_clicked)
        self.retake_button = QPushButton("Take again")
        self.retake_button.setToolTip("Capture the screen again (F5)")
        self.retake_button.clicked.connect(self._on_retake_button_clicked)
        for keys, slot in (("Ctrl+S", self._on_save_button_clicked),
                           ("Ctrl+C", self._on_copy_button_clicked),
                           ("F5", self._on_retake_button_clicked)):
            QShortcut(QKeySequence(keys), self).activated.connect(slot)
        self.status = QLabel()
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 4, 6, 6)
        bar.addWidget(self.status, 1)
        bar.addWidget(self.actual_size)
        bar.addWidget(self.retake_button)
        bar.addWidget(self.copy_button)
        bar.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.scroll_area, 1)
        layout.addLayout(bar)
        self.resize(600, MAX_INITIAL_HEIGHT)

    def _on_actual_size_toggled(self, _on: bool) -> None:
        self._render()

    def _on_save_button_clicked(self) -> None:
        if self._png:
            self.open_save_dialog()

    def _on_dialog_file_selected(self, path: str) -> None:
        self._dialog = None
        self.save_to(path)

    def _on_copy_button_clicked(self) -> None:
        if not self._pixmap.isNull():
            QGuiApplication.clipboard().setPixmap(self._pixmap)
            self.show_message("Copied to the clipboard")

    def _on_retake_button_clicked(self) -> None:
        self.retake_button.setEnabled(False)
        self.show_message("Capturing\u2026")
        self.retake_requested.emit(self.serial)

    # -- internals ------------------------------------------------------------------------
    def _render(self) -> None:
        if self._pixmap.isNull():
            return
        if self.actual_size.isChecked():
            self.image.setPixmap(self._pixmap)
            return
        area = self.scroll_area.viewport().size()
        width, height = max(1, area.width() - 4), max(1, area.height() - 4)
        if self._pixmap.width() <= width and self._pixmap.height() <= height:
            self.image.setPixmap(self._pixmap)  # fits: never blur it by enlarging
            return
        self.image.setPixmap(self._pixmap.scaled(
            width, height, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation))

    # -- Qt overrides ---------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.scroll_area.viewport() and event.type() == QEvent.Type.Resize:
            self._render()  # fit the image to the space it really has now
        return False
