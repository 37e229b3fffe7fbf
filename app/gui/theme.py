"""Light and dark palettes, and the colours every view derives from the palette.

Views never hard-code colours: they ask this module for colours computed from
the palette in force (tile states, execution statuses, the 16 ANSI colours), so
switching theme recolours everything. Hues are fixed (green means idle in both
modes), but each colour is blended with the palette's base and then pushed
until text on it, or it on the base, reaches the WCAG contrast ratio of 4.5.

Views repaint on a theme switch in one of two ways: Qt sends every widget a
``QEvent.PaletteChange`` when the application palette changes, and
:func:`theme_notifier` emits ``theme_changed`` after :func:`apply_theme` for
anything that caches colours outside a widget (models, delegates, charts).
"""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory, QToolTip

THEME_MODES = ("system", "light", "dark")

TILE_STATES = ("idle", "busy", "held", "maintenance", "offline", "unauthorized", "absent")

MIN_TEXT_CONTRAST = 4.5

# The hue that names each tile state, identical in light and dark mode so an
# operator's eye learns one mapping; the palette decides how strong it is.
_STATE_HUES: dict[str, str] = {
    "idle": "#2e9d4f",
    "busy": "#2f7fd8",
    "held": "#8e5bd6",
    "maintenance": "#d9961a",
    "offline": "#7d8590",
    "unauthorized": "#d64545",
    "absent": "#5c5c5c",
}

# Execution statuses (Celery vocabulary) -> hue of the status text in tables.
_STATUS_HUES: dict[str, str] = {
    "PENDING": "#7d8590",
    "STARTED": "#2f7fd8",
    "RETRY": "#8e5bd6",
    "SUCCESS": "#2e9d4f",
    "FAILURE": "#d64545",
    "REVOKED": "#c7800e",
}

# 16 ANSI colours (black, red, green, yellow, blue, magenta, cyan, white, then
# the bright variants) for a dark and a light terminal background.
_ANSI_ON_DARK = (
    "#1e1e1e", "#f14c4c", "#23d18b", "#e5e510", "#3b8eea", "#d670d6", "#29b8db", "#cccccc",
    "#767676", "#ff6b6b", "#3de89e", "#f5f543", "#6aaaff", "#e68ae6", "#4fd3f0", "#f2f2f2",
)
_ANSI_ON_LIGHT = (
    "#000000", "#c21b1b", "#00803a", "#8a6d00", "#0451a5", "#a626a4", "#0a7a8f", "#5c5c5c",
    "#666666", "#d92626", "#0f8f47", "#a07d00", "#1565c0", "#b83ab5", "#0b8aa0", "#303030",
)


class ThemeNotifier(QObject):
    """Tells colour-caching objects that the theme changed.

    Signals:
        theme_changed(str): the mode just applied ("system", "light" or "dark").
    """

    theme_changed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.mode = "system"


_notifier: ThemeNotifier | None = None


def theme_notifier() -> ThemeNotifier:
    """The process-wide notifier, created on first use (never at import time)."""
    global _notifier
    if _notifier is None or not shiboken6.isValid(_notifier):
        _notifier = ThemeNotifier(QApplication.instance())
        # Connected once for the life of the process; the slot ignores the
        # platform's scheme unless the operator chose "system".
        QGuiApplication.styleHints().colorSchemeChanged.connect(
            _on_style_hints_color_scheme_changed
        )
    return _notifier


def apply_theme(app: QApplication, mode: str) -> None:
    """Switch the application to the Fusion style with a full light or dark palette.

    Args:
        app: the running application.
        mode: "light", "dark", or "system" (follows the platform's colour scheme,
            light when the platform does not say, and follows later changes).

    Raises:
        ValueError: for an unknown mode.
    """
    if mode not in THEME_MODES:
        raise ValueError(f"unknown theme {mode!r}: use one of {', '.join(THEME_MODES)}")
    notifier = theme_notifier()
    notifier.mode = mode
    style = QStyleFactory.create("Fusion")
    if style is not None:
        app.setStyle(style)
    dark = mode == "dark" or (mode == "system" and _system_is_dark())
    palette = dark_palette() if dark else light_palette()
    app.setPalette(palette)
    QToolTip.setPalette(palette)
    notifier.theme_changed.emit(mode)


def light_palette() -> QPalette:
    """A complete light palette (every role, including the disabled group)."""
    return _build_palette(
        window="#efefef", window_text="#1f2328", base="#ffffff", alternate_base="#f4f5f7",
        text="#1f2328", button="#e8e8e8", bright_text="#ffffff", highlight="#2a62c9",
        highlighted_text="#ffffff", link="#0b57c2", link_visited="#6f42c1",
        tooltip_base="#fffbe6", placeholder="#5f6670", disabled="#8c8f94",
        light="#ffffff", midlight="#f5f5f5", mid="#b8bcc2", dark="#9a9ea5", shadow="#6a6e74",
    )


def dark_palette() -> QPalette:
    """A complete dark palette (every role, including the disabled group)."""
    return _build_palette(
        window="#2a2c30", window_text="#e6e8eb", base="#1d1f22", alternate_base="#25272b",
        text="#e6e8eb", button="#36393e", bright_text="#ffffff", highlight="#3a6fd1",
        highlighted_text="#ffffff", link="#7aaeff", link_visited="#c39bff",
        tooltip_base="#3a3d42", placeholder="#9ba1a8", disabled="#6f747a",
        light="#4a4d53", midlight="#3f4247", mid="#2f3236", dark="#18191b", shadow="#0c0c0d",
    )


def is_dark(palette: QPalette) -> bool:
    """True when the palette's base is darker than its text."""
    return palette.color(QPalette.ColorRole.Base).lightnessF() < palette.color(
        QPalette.ColorRole.Text
    ).lightnessF()


def state_colors(palette: QPalette) -> dict[str, QColor]:
    """Tile background per device state, legible under the palette's text colour.

    Args:
        palette: the palette in force.

    Returns:
        A colour for each of :data:`TILE_STATES`; the palette's ``Text`` colour on
        it has a contrast ratio of at least :data:`MIN_TEXT_CONTRAST`.
    """
    base = palette.color(QPalette.ColorRole.Base)
    text = palette.color(QPalette.ColorRole.Text)
    strength = 0.30 if is_dark(palette) else 0.20
    out: dict[str, QColor] = {}
    for state, hue in _STATE_HUES.items():
        amount = strength
        colour = blend(base, QColor(hue), amount)
        while contrast_ratio(text, colour) < MIN_TEXT_CONTRAST and amount > 0.0:
            amount = max(0.0, amount - 0.02)
            colour = blend(base, QColor(hue), amount)
        out[state] = colour
    return out


def state_accent_colors(palette: QPalette) -> dict[str, QColor]:
    """Strong colour per device state, for bands and chips drawn without text on them."""
    dark = is_dark(palette)
    return {
        state: QColor(hue).lighter(115) if dark else QColor(hue)
        for state, hue in _STATE_HUES.items()
    }


def status_colors(palette: QPalette) -> dict[str, QColor]:
    """Text colour per execution status, legible on ``Base`` and ``AlternateBase``."""
    text = palette.color(QPalette.ColorRole.Text)
    grounds = (
        palette.color(QPalette.ColorRole.Base),
        palette.color(QPalette.ColorRole.AlternateBase),
    )
    return {status: legible_on(QColor(hue), grounds, text) for status, hue in _STATUS_HUES.items()}


def ansi_colors(palette: QPalette) -> list[QColor]:
    """The 16 ANSI colours suited to the palette's base (dark or light background)."""
    table = _ANSI_ON_DARK if is_dark(palette) else _ANSI_ON_LIGHT
    return [QColor(value) for value in table]


def secondary_text(palette: QPalette, background: QColor) -> QColor:
    """A muted text colour for captions that still reads on ``background``."""
    text = palette.color(QPalette.ColorRole.Text)
    return legible_on(blend(text, background, 0.35), (background,), text)


def legible_on(colour: QColor, grounds: tuple[QColor, ...], towards: QColor) -> QColor:
    """Move ``colour`` towards ``towards`` until it reads on every ground colour."""
    out = QColor(colour)
    amount = 0.0
    while amount < 1.0 and min(contrast_ratio(out, g) for g in grounds) < MIN_TEXT_CONTRAST:
        amount = min(1.0, amount + 0.05)
        out = blend(colour, towards, amount)
    return out


def blend(a: QColor, b: QColor, amount: float) -> QColor:
    """Mix ``b`` into ``a``: 0.0 gives ``a``, 1.0 gives ``b``."""
    keep = 1.0 - amount
    return QColor.fromRgbF(
        a.redF() * keep + b.redF() * amount,
        a.greenF() * keep + b.greenF() * amount,
        a.blueF() * keep + b.blueF() * amount,
    )


def relative_luminance(colour: QColor) -> float:
    """WCAG 2 relative luminance of an opaque colour."""

    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    return (
        0.2126 * channel(colour.redF())
        + 0.7152 * channel(colour.greenF())
        + 0.0722 * channel(colour.blueF())
    )


def contrast_ratio(a: QColor, b: QColor) -> float:
    """WCAG 2 contrast ratio between two colours (1.0 to 21.0)."""
    la, lb = relative_luminance(a), relative_luminance(b)
    light, dark = max(la, lb), min(la, lb)
    return (light + 0.05) / (dark + 0.05)


def _system_is_dark() -> bool:
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def _on_style_hints_color_scheme_changed(_scheme: Qt.ColorScheme) -> None:
    app = QApplication.instance()
    if isinstance(app, QApplication) and theme_notifier().mode == "system":
        apply_theme(app, "system")


def _build_palette(
    *,
    window: str,
    window_text: str,
    base: str,
    alternate_base: str,
    text: str,
    button: str,
    bright_text: str,
    highlight: str,
    highlighted_text: str,
    link: str,
    link_visited: str,
    tooltip_base: str,
    placeholder: str,
    disabled: str,
    light: str,
    midlight: str,
    mid: str,
    dark: str,
    shadow: str,
) -> QPalette:
    role = QPalette.ColorRole
    palette = QPalette()
    values = {
        role.Window: window,
        role.WindowText: window_text,
        role.Base: base,
        role.AlternateBase: alternate_base,
        role.Text: text,
        role.Button: button,
        role.ButtonText: text,
        role.BrightText: bright_text,
        role.Highlight: highlight,
        role.HighlightedText: highlighted_text,
        role.Link: link,
        role.LinkVisited: link_visited,
        role.ToolTipBase: tooltip_base,
        role.ToolTipText: text,
        role.PlaceholderText: placeholder,
        role.Light: light,
        role.Midlight: midlight,
        role.Mid: mid,
        role.Dark: dark,
        role.Shadow: shadow,
        role.Accent: highlight,
    }
    for colour_role, value in values.items():
        palette.setColor(colour_role, QColor(value))
    group = QPalette.ColorGroup.Disabled
    for colour_role in (role.WindowText, role.Text, role.ButtonText, role.HighlightedText):
        palette.setColor(group, colour_role, QColor(disabled))
    palette.setColor(group, role.Highlight, QColor(mid))
    return palette
