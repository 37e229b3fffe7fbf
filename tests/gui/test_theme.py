"""Theme: full palettes, and derived colours that stay legible in both modes."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget

from app.gui.theme import (
    MIN_TEXT_CONTRAST,
    TILE_STATES,
    ansi_colors,
    apply_theme,
    contrast_ratio,
    dark_palette,
    is_dark,
    light_palette,
    secondary_text,
    state_accent_colors,
    state_colors,
    status_colors,
    theme_notifier,
)

PALETTES = {"light": light_palette, "dark": dark_palette}


def test_contrast_ratio_matches_wcag_reference_values() -> None:
    assert contrast_ratio(QColor("#000000"), QColor("#ffffff")) == pytest.approx(21.0)
    assert contrast_ratio(QColor("#777777"), QColor("#ffffff")) == pytest.approx(4.48, abs=0.01)
    assert contrast_ratio(QColor("#123456"), QColor("#123456")) == pytest.approx(1.0)


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_text_on_every_tile_state_background_is_legible(qapp: QApplication, mode: str) -> None:
    palette = PALETTES[mode]()
    colours = state_colors(palette)
    assert set(colours) == set(TILE_STATES)
    text = palette.color(QPalette.ColorRole.Text)
    for state, background in colours.items():
        assert contrast_ratio(text, background) >= MIN_TEXT_CONTRAST, (mode, state)
        caption = secondary_text(palette, background)
        assert contrast_ratio(caption, background) >= MIN_TEXT_CONTRAST, (mode, state)


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_tile_states_are_distinguishable(qapp: QApplication, mode: str) -> None:
    """Seven states must not collapse into the same tint (e.g. a contrast fix
    that blends everything back to the base colour)."""
    palette = PALETTES[mode]()
    base = palette.color(QPalette.ColorRole.Base)
    tints = state_colors(palette)
    names = {c.name() for c in tints.values()}
    assert len(names) == len(TILE_STATES)
    assert all(c != base for c in tints.values())
    accents = state_accent_colors(palette)
    assert len({c.name() for c in accents.values()}) == len(TILE_STATES)


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_status_text_is_legible_on_table_rows(qapp: QApplication, mode: str) -> None:
    palette = PALETTES[mode]()
    for status, colour in status_colors(palette).items():
        for role in (QPalette.ColorRole.Base, QPalette.ColorRole.AlternateBase):
            assert contrast_ratio(colour, palette.color(role)) >= MIN_TEXT_CONTRAST, status


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_palettes_are_complete_and_readable(qapp: QApplication, mode: str) -> None:
    palette = PALETTES[mode]()
    role = QPalette.ColorRole
    assert is_dark(palette) is (mode == "dark")
    for fg, bg in [
        (role.Text, role.Base),
        (role.Text, role.AlternateBase),
        (role.WindowText, role.Window),
        (role.ButtonText, role.Button),
        (role.HighlightedText, role.Highlight),
        (role.ToolTipText, role.ToolTipBase),
        (role.PlaceholderText, role.Base),
    ]:
        ratio = contrast_ratio(palette.color(fg), palette.color(bg))
        assert ratio >= MIN_TEXT_CONTRAST, (mode, fg, bg, ratio)
    disabled = palette.color(QPalette.ColorGroup.Disabled, role.Text)
    assert disabled != palette.color(QPalette.ColorGroup.Active, role.Text)


def test_ansi_colours_follow_the_background(qapp: QApplication) -> None:
    dark = ansi_colors(dark_palette())
    light = ansi_colors(light_palette())
    assert len(dark) == len(light) == 16
    # The default-foreground-like colours (white, bright white) read on their base.
    assert contrast_ratio(dark[7], dark_palette().color(QPalette.ColorRole.Base)) >= 4.5
    assert contrast_ratio(light[1], light_palette().color(QPalette.ColorRole.Base)) >= 4.5


class _ChangeRecorder(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[QEvent.Type] = []

    def changeEvent(self, event: QEvent) -> None:
        self.seen.append(event.type())
        super().changeEvent(event)


def test_apply_theme_switches_palette_and_notifies(qapp: QApplication, qtbot) -> None:
    widget = _ChangeRecorder()
    qtbot.addWidget(widget)
    seen = widget.seen
    try:
        with qtbot.waitSignal(theme_notifier().theme_changed) as blocker:
            apply_theme(qapp, "dark")
        assert blocker.args == ["dark"]
        assert is_dark(qapp.palette())
        assert qapp.style().name().lower() == "fusion"
        # Widgets repaint through the palette-change event Qt sends them.
        qtbot.waitUntil(lambda: QEvent.Type.PaletteChange in seen, timeout=2000)
        apply_theme(qapp, "light")
        assert not is_dark(qapp.palette())
        # Offscreen reports no colour scheme: "system" falls back to light.
        apply_theme(qapp, "system")
        assert not is_dark(qapp.palette())
        assert theme_notifier().mode == "system"
    finally:
        apply_theme(qapp, "light")


def test_unknown_theme_is_refused(qapp: QApplication) -> None:
    with pytest.raises(ValueError, match="unknown theme"):
        apply_theme(qapp, "solarized")


def test_the_checked_view_toggle_shows_in_the_highlight_in_both_themes(
        qapp: QApplication, qtbot) -> None:
    """Fusion drew the checked button a shade darker: on the dark palette the
    unchecked one looked chosen. The checked one now wears the highlight."""
    from PySide6.QtGui import QAction, QActionGroup

    from app.gui.viewtoggle import ViewToggleButton

    parent = QWidget()
    qtbot.addWidget(parent)
    group = QActionGroup(parent)
    actions = [QAction(name, parent, checkable=True) for name in ("Tiles", "Table")]
    for action in actions:
        group.addAction(action)
    buttons = [ViewToggleButton(action, parent) for action in actions]
    actions[0].setChecked(True)

    def looks_checked(button: ViewToggleButton) -> bool:
        palette = button.palette()
        return (palette.color(QPalette.ColorRole.Button)
                == qapp.palette().color(QPalette.ColorRole.Highlight))

    try:
        for mode in ("dark", "light", "dark"):
            apply_theme(qapp, mode)
            assert [looks_checked(b) for b in buttons] == [True, False]
            text = buttons[0].palette().color(QPalette.ColorRole.ButtonText)
            ground = buttons[0].palette().color(QPalette.ColorRole.Button)
            assert contrast_ratio(text, ground) >= MIN_TEXT_CONTRAST
            assert buttons[1].palette().color(QPalette.ColorRole.Button) == \
                qapp.palette().color(QPalette.ColorRole.Button)
        actions[1].setChecked(True)
        assert [looks_checked(b) for b in buttons] == [False, True]
    finally:
        apply_theme(qapp, "light")
