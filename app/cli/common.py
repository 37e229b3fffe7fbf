"""Helpers shared by the CLI commands: store access, output, errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from app.core.paths import Paths


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit code 1 (or ``code``)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@contextmanager
def opened_store(paths: Paths, database: str | None) -> Iterator[None]:
    """Open the store in this process (the CLI does not need a running engine)."""
    from app.store.db import close_database
    from app.store.schema import open_store

    paths.ensure()
    open_store(database or paths.database, paths.backups)
    try:
        yield
    finally:
        close_database()


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned text table (truncating long cells)."""
    text_rows = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text_rows:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line.rstrip())
    for row in text_rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any, limit: int = 60) -> str:
    if value is None:
        return "-"
    text = str(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_time(iso_text: str | None) -> str:
    if not iso_text:
        return "-"
    return iso_text.replace("T", " ")[:19]
