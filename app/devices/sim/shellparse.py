"""Parse the subset of ``/system/bin/sh`` syntax the simulated phones understand.

Supported: words with single/double quotes and backslash escapes; ``$?``,
``$NAME`` and ``${NAME}`` (expanded when the command runs, so
``cmd; echo $?`` sees ``cmd``'s status); ``;``, newlines and ``&`` (run in
sequence: there are no background jobs), ``&&``, ``||``, ``|``; redirections
``>``, ``>>``, ``<``, ``2>``, ``2>>``, ``2>&1``, ``>&2``; ``#`` comments.
Not supported (a syntax error): subshells, ``$(...)``, functions, control flow.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ShellSyntaxError(Exception):
    """The command line uses syntax the simulated shell does not support."""


@dataclass(frozen=True)
class Var:
    """A ``$NAME`` reference inside a word."""

    name: str


@dataclass
class Word:
    parts: list[str | Var] = field(default_factory=list)


@dataclass
class Redirect:
    fd: int  # 0 stdin, 1 stdout, 2 stderr
    op: str  # ">", ">>", "<", ">&"
    target: Word | int


@dataclass
class Command:
    words: list[Word] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class Pipeline:
    commands: list[Command]


@dataclass
class AndOr:
    """``first`` then each ``(op, pipeline)`` with op ``&&`` or ``||``."""

    first: Pipeline
    rest: list[tuple[str, Pipeline]]


_OPERATORS = ("&&", "||", ";", "|", "&", "\n")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


@dataclass
class _Op:
    text: str


@dataclass
class _Redir:
    fd: int
    op: str


_Token = Word | _Op | _Redir


def parse(text: str) -> list[AndOr]:
    """Parse a command line into and-or lists to run in sequence.

    Raises:
        ShellSyntaxError: unsupported or malformed syntax.
    """
    tokens = _tokenize(text)
    script: list[AndOr] = []
    i = 0
    while i < len(tokens):
        if _is_op(tokens, i, ";", "&", "\n"):
            i += 1
            continue
        first, i = _parse_pipeline(tokens, i)
        rest: list[tuple[str, Pipeline]] = []
        while _is_op(tokens, i, "&&", "||"):
            token = tokens[i]
            assert isinstance(token, _Op)
            i += 1
            while _is_op(tokens, i, "\n"):
                i += 1
            pipeline, i = _parse_pipeline(tokens, i)
            rest.append((token.text, pipeline))
        script.append(AndOr(first, rest))
    return script


def _is_op(tokens: list[_Token], i: int, *texts: str) -> bool:
    if i >= len(tokens):
        return False
    token = tokens[i]
    return isinstance(token, _Op) and token.text in texts


def _parse_pipeline(tokens: list[_Token], i: int) -> tuple[Pipeline, int]:
    commands: list[Command] = []
    while True:
        command, i = _parse_command(tokens, i)
        commands.append(command)
        if _is_op(tokens, i, "|"):
            i += 1
            continue
        return Pipeline(commands), i


def _parse_command(tokens: list[_Token], i: int) -> tuple[Command, int]:
    command = Command()
    while i < len(tokens):
        token = tokens[i]
        if isinstance(token, _Op):
            break
        if isinstance(token, Word):
            command.words.append(token)
            i += 1
            continue
        # A redirection: its target is the next word (or an fd number for >&).
        if i + 1 >= len(tokens) or not isinstance(tokens[i + 1], Word):
            raise ShellSyntaxError("syntax error: redirection without a target")
        target = tokens[i + 1]
        assert isinstance(target, Word)
        if token.op == ">&":
            text = "".join(p for p in target.parts if isinstance(p, str))
            if not text.isdigit():
                raise ShellSyntaxError(f"syntax error: bad fd {text!r}")
            command.redirects.append(Redirect(token.fd, ">&", int(text)))
        else:
            command.redirects.append(Redirect(token.fd, token.op, target))
        i += 2
    if not command.words and not command.redirects:
        here = tokens[i] if i < len(tokens) else None
        bad = here.text if isinstance(here, _Op) else "end"
        raise ShellSyntaxError(f"syntax error: {bad!r} unexpected")
    return command, i


class _Builder:
    """Accumulates tokens; a word is built from literal text and variable parts."""

    def __init__(self) -> None:
        self.tokens: list[_Token] = []
        self._parts: list[str | Var] | None = None
        self._literal: list[str] = []

    def text(self, value: str) -> None:
        if self._parts is None:
            self._parts = []
        self._literal.append(value)

    def var(self, name: str) -> None:
        self.text("")
        self._flush()
        assert self._parts is not None
        self._parts.append(Var(name))

    def end_word(self) -> None:
        if self._parts is not None:
            self._flush()
            self.tokens.append(Word(self._parts))
            self._parts = None

    def take_fd(self) -> int | None:
        """The pending word if it is a bare number (the ``2`` of ``2>``), consumed."""
        digits = "".join(self._literal)
        if self._parts == [] and digits.isdigit():
            self._parts, self._literal = None, []
            return int(digits)
        return None

    def in_word(self) -> bool:
        return self._parts is not None

    def _flush(self) -> None:
        if self._literal and self._parts is not None:
            joined = "".join(self._literal)
            if joined:
                self._parts.append(joined)
            self._literal = []


def _tokenize(text: str) -> list[_Token]:
    b = _Builder()
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r":
            b.end_word()
            i += 1
        elif ch == "#" and not b.in_word():
            while i < n and text[i] != "\n":
                i += 1
        elif ch == "\\":
            if i + 1 < n and text[i + 1] != "\n":
                b.text(text[i + 1])
            i += 2
        elif ch == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise ShellSyntaxError("syntax error: unterminated quoted string")
            b.text(text[i + 1 : end])
            i = end + 1
        elif ch == '"':
            i = _read_double_quoted(text, i + 1, b)
        elif ch == "$":
            i = _read_var(text, i, b)
        elif ch in "><":
            i = _read_redirect(text, i, b)
        elif ch in "()`":
            raise ShellSyntaxError(f"syntax error: {ch!r} is not supported by the sim shell")
        elif ch in ";&|\n":
            b.end_word()
            op = text[i : i + 2] if text[i : i + 2] in ("&&", "||") else ch
            b.tokens.append(_Op(op))
            i += len(op)
        else:
            b.text(ch)
            i += 1
    b.end_word()
    return b.tokens


def _read_double_quoted(text: str, i: int, b: _Builder) -> int:
    b.text("")
    n = len(text)
    while True:
        if i >= n:
            raise ShellSyntaxError("syntax error: unterminated quoted string")
        c = text[i]
        if c == '"':
            return i + 1
        if c == "\\" and i + 1 < n and text[i + 1] in '"\\$`':
            b.text(text[i + 1])
            i += 2
        elif c == "$":
            i = _read_var(text, i, b)
        else:
            b.text(c)
            i += 1


def _read_redirect(text: str, i: int, b: _Builder) -> int:
    fd = b.take_fd()
    b.end_word()
    if text[i] == "<":
        b.tokens.append(_Redir(0 if fd is None else fd, "<"))
        return i + 1
    fd = 1 if fd is None else fd
    for op in (">>", ">&", ">"):
        if text.startswith(op, i):
            b.tokens.append(_Redir(fd, op))
            return i + len(op)
    raise AssertionError("unreachable")


def _read_var(text: str, i: int, b: _Builder) -> int:
    """Read ``$?``, ``$NAME`` or ``${NAME}`` at ``text[i]``; returns the next index."""
    n = len(text)
    if i + 1 < n and text[i + 1] in "?#$!0123456789":
        b.var(text[i + 1])
        return i + 2
    if i + 1 < n and text[i + 1] == "{":
        end = text.find("}", i + 2)
        if end < 0:
            raise ShellSyntaxError("syntax error: bad substitution")
        b.var(text[i + 2 : end])
        return end + 1
    j = i + 1
    while j < n and text[j] in _NAME_CHARS:
        j += 1
    if j == i + 1:
        b.text("$")
        return i + 1
    b.var(text[i + 1 : j])
    return j
