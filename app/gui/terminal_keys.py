"""Keystrokes to the byte sequences a VT100/xterm terminal sends.

Kept apart from the widget so the table can be read (and tested) on its own.
"""

from __future__ import annotations

from PySide6.QtCore import Qt

Key = Qt.Key
Mod = Qt.KeyboardModifier

# Cursor keys: the final byte; sent as CSI x, or SS3 x in application mode.
_CURSOR = {Key.Key_Up: "A", Key.Key_Down: "B", Key.Key_Right: "C", Key.Key_Left: "D",
           Key.Key_Home: "H", Key.Key_End: "F"}

# Editing keys and F5-F12: CSI n ~
_TILDE = {
    Key.Key_Insert: 2, Key.Key_Delete: 3, Key.Key_PageUp: 5, Key.Key_PageDown: 6,
    Key.Key_F5: 15, Key.Key_F6: 17, Key.Key_F7: 18, Key.Key_F8: 19,
    Key.Key_F9: 20, Key.Key_F10: 21, Key.Key_F11: 23, Key.Key_F12: 24,
}

# F1-F4: SS3 P..S
_PF = {Key.Key_F1: "P", Key.Key_F2: "Q", Key.Key_F3: "R", Key.Key_F4: "S"}

_SIMPLE = {
    Key.Key_Return: b"\r",
    Key.Key_Enter: b"\r",
    Key.Key_Backspace: b"\x7f",
    Key.Key_Tab: b"\t",
    Key.Key_Backtab: b"\x1b[Z",
    Key.Key_Escape: b"\x1b",
}

# Ctrl with punctuation: the C0 control codes xterm sends.
_CTRL_PUNCT = {
    Key.Key_At: b"\x00", Key.Key_Space: b"\x00", Key.Key_BracketLeft: b"\x1b",
    Key.Key_Backslash: b"\x1c", Key.Key_BracketRight: b"\x1d",
    Key.Key_AsciiCircum: b"\x1e", Key.Key_Underscore: b"\x1f", Key.Key_Question: b"\x7f",
}


def key_to_bytes(
    key: int, modifiers: Qt.KeyboardModifier, text: str, *, app_cursor: bool = False
) -> bytes | None:
    """The bytes to send for one key press, or None when the key sends nothing.

    Args:
        key: the ``Qt.Key`` value of the press.
        modifiers: the keyboard modifiers held.
        text: the text Qt produced for the press (may be empty).
        app_cursor: DECCKM (application cursor keys) is set by the remote.

    Returns:
        The VT sequence, UTF-8 text, or None (modifier-only presses and the like).
    """
    shift = bool(modifiers & Mod.ShiftModifier)
    alt = bool(modifiers & Mod.AltModifier)
    ctrl = bool(modifiers & Mod.ControlModifier)
    # xterm's modifier parameter: 1 + shift + 2*alt + 4*ctrl.
    param = 1 + shift + 2 * alt + 4 * ctrl
    try:
        qkey: Qt.Key | None = Key(key)
    except ValueError:
        qkey = None

    if qkey in _CURSOR:
        final = _CURSOR[qkey]
        if param > 1:
            return f"\x1b[1;{param}{final}".encode()
        return (f"\x1bO{final}" if app_cursor else f"\x1b[{final}").encode()
    if qkey in _TILDE:
        code = _TILDE[qkey]
        return (f"\x1b[{code};{param}~" if param > 1 else f"\x1b[{code}~").encode()
    if qkey in _PF:
        final = _PF[qkey]
        return (f"\x1b[1;{param}{final}" if param > 1 else f"\x1bO{final}").encode()
    if qkey in _SIMPLE:
        sequence = _SIMPLE[qkey]
        if qkey == Key.Key_Backspace and ctrl:
            sequence = b"\x08"
        return b"\x1b" + sequence if alt and qkey != Key.Key_Escape else sequence
    if ctrl:
        control = _control_code(key)
        if control is not None:
            return b"\x1b" + control if alt else control
    if not text:
        return None
    data = text.encode("utf-8")
    return b"\x1b" + data if alt else data


def _control_code(key: int) -> bytes | None:
    if Key.Key_A.value <= key <= Key.Key_Z.value:
        return bytes([key - Key.Key_A.value + 1])
    for qkey, code in _CTRL_PUNCT.items():
        if key == qkey.value:
            return code
    return None
