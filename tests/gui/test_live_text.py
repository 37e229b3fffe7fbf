"""Live text: labels that do not re-lay out the window, refreshes that are throttled."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from app.gui.livelabel import LiveLabel
from app.gui.throttle import Throttle


class LayoutCounter(QObject):
    def __init__(self, widget: QWidget) -> None:
        super().__init__(widget)
        self.count = 0
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.LayoutRequest:
            self.count += 1
        return False


def _row(qtbot, label: QLabel) -> tuple[QWidget, LayoutCounter]:
    row = QWidget()
    qtbot.addWidget(row)
    layout = QHBoxLayout(row)
    layout.addWidget(label)
    layout.addStretch(1)
    row.show()
    qtbot.waitExposed(row)
    qtbot.wait(20)
    return row, LayoutCounter(row)


def test_counts_that_change_do_not_re_lay_out_the_window(qtbot) -> None:
    label = LiveLabel("busy 10 \u00b7 idle 90")
    row, layouts = _row(qtbot, label)
    for busy in range(11, 60):
        label.setText(f"busy {busy} \u00b7 idle {100 - busy}")
        qtbot.wait(1)
    assert layouts.count == 0
    assert label.text() == "busy 59 \u00b7 idle 41"
    width = label.width()
    # A longer text gets the room it needs (one layout pass); a shorter one keeps it.
    label.setText("busy 59 \u00b7 idle 41 \u00b7 held 12 \u00b7 offline 3")
    qtbot.waitUntil(lambda: layouts.count >= 1)
    assert label.width() > width and label.width() >= label.sizeHint().width()
    grown, count = label.width(), layouts.count
    label.setText("busy 1")
    qtbot.wait(20)
    assert label.width() == grown and layouts.count == count


def test_a_plain_label_would_re_lay_out_on_every_change(qtbot) -> None:
    """The cost LiveLabel avoids (so the test above can fail)."""
    label = QLabel("busy 10")
    row, layouts = _row(qtbot, label)
    for busy in range(11, 21):
        label.setText(f"busy {busy}")
        qtbot.wait(1)
    assert layouts.count >= 5


def test_a_throttle_runs_at_once_then_once_per_interval_and_never_drops_the_last(
        qtbot) -> None:
    calls: list[int] = []
    state = [0]
    throttle = Throttle(100, lambda: calls.append(state[0]))
    state[0] = 1
    throttle()
    assert calls == [1]  # the first request runs at once
    for value in range(2, 50):
        state[0] = value
        throttle()
    assert calls == [1]  # folded while the interval runs...
    qtbot.waitUntil(lambda: len(calls) == 2, timeout=1000)
    assert calls == [1, 49]  # ...into one run that shows the last state
    qtbot.wait(250)
    assert calls == [1, 49] and throttle.runs == 2  # nothing pending: nothing runs


def test_digits_ticking_over_keep_the_text_whole_without_measuring_it(qtbot) -> None:
    label = LiveLabel("<b>busy 1</b> \u00b7 idle 1")
    row, _layouts = _row(qtbot, label)
    for busy in [8, 0, 4, 7, 9]:  # same shape: the width the first text got still fits
        label.setText(f"<b>busy {busy}</b> \u00b7 idle {9 - busy}")
        assert label.width() >= label.sizeHint().width()
    label.setText("<b>busy 10</b> \u00b7 idle 88")  # one digit more: measured again
    assert label.width() >= label.sizeHint().width()
