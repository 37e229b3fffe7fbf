"""Unhandled exceptions: logged with their traceback, and shown in a report dialog
(non-modal: ``open()``, never ``exec()``, so the qasync loop keeps running)."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtWidgets import QApplication, QMessageBox

log = logging.getLogger("taskdesk.crash")
_dialogs: list[QMessageBox] = []


def install_excepthook(log_dir: Path) -> None:
    def hook(kind: type[BaseException], value: BaseException,
             tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
            return
        text = "".join(traceback.format_exception(kind, value, tb))
        log.critical("unhandled exception:\n%s", text)
        if QApplication.instance() is None:
            return
        box = QMessageBox(QMessageBox.Icon.Critical, "TaskDesk hit a bug",
                          f"{kind.__name__}: {value}\n\nThe details are in "
                          f"{log_dir / 'taskdesk.log'}. TaskDesk keeps running; "
                          "please report this.")
        box.setDetailedText(text)
        box.finished.connect(lambda _=0: _dialogs.remove(box) if box in _dialogs else None)
        _dialogs.append(box)
        box.open()

    sys.excepthook = hook
