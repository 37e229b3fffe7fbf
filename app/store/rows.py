"""Typed ways to run a peewee SELECT and get plain Python values back.

peewee's stubs type ``.dicts()``/``.tuples()`` as returning the model, so code
that iterates them would need casts everywhere; these helpers give the
repository modules honest types (and never hand out live ORM rows).
"""

from __future__ import annotations

from typing import Any

import peewee


def dicts(query: peewee.SelectBase) -> list[dict[str, Any]]:
    """Every row as a dict (field converters applied, e.g. JSON decoded)."""
    return [dict(row) for row in query.dicts()]


def first_dict(query: peewee.SelectBase) -> dict[str, Any] | None:
    row: Any = query.dicts().first()
    return dict(row) if row is not None else None


def tuples(query: peewee.SelectBase) -> list[tuple[Any, ...]]:
    """Every row as a tuple, in the order of the selected columns."""
    return [tuple(row) for row in query.tuples()]


def column(query: peewee.SelectBase) -> list[Any]:
    """The first selected column of every row."""
    return [row[0] for row in query.tuples()]
