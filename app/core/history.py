"""What the execution history is asked for: a filter, and one page of answers.

``ExecutionFilter`` is built from a query string by ``from_query`` with the
parameter names of the execution-record reference (``module``, ``task_name``,
``status`` as a comma list, ``created_by``, ``start_date``/``end_date``,
``search``) plus TaskDesk's ``device`` and ``agent``. Time bounds are half-open:
``since <= created_at < until``; a date-only ``end_date`` means "until the end
of that UTC day", so ``start_date=end_date=2024-05-01`` is that whole day.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from app.core.clock import parse_time
from app.core.enums import ExecStatus
from app.core.errors import ValidationError
from app.core.records import ExecutionRecord

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_TEXT = 200

# Query-string names accepted for each filter field (first is the canonical one).
_ALIASES: dict[str, tuple[str, ...]] = {
    "module": ("module",),
    "task_name": ("task_name",),
    "statuses": ("status", "statuses"),
    "device_serial": ("device", "device_serial"),
    "agent_uuid": ("agent", "agent_uuid"),
    "created_by": ("created_by",),
    "since": ("start_date", "since"),
    "until": ("end_date", "until"),
    "text": ("search", "text"),
}

Cursor = tuple[float, int]


@dataclass(frozen=True)
class ExecutionFilter:
    """Conditions AND-ed together; ``None``/empty means "no condition"."""

    module: str | None = None
    task_name: str | None = None
    statuses: tuple[ExecStatus, ...] = field(default_factory=tuple)
    device_serial: str | None = None
    agent_uuid: str | None = None
    created_by: str | None = None
    since: float | None = None
    until: float | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValidationError("the start of the date range must be before its end",
                                  field="start_date")
        if self.text is not None and len(self.text) > MAX_TEXT:
            raise ValidationError(f"search text is longer than {MAX_TEXT} characters",
                                  field="search")

    @property
    def is_empty(self) -> bool:
        return self == ExecutionFilter()

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> ExecutionFilter:
        """Parse query-string parameters; unknown names are ignored (pagination and
        presentation options travel in the same query string).

        Raises:
            ValidationError: a known parameter has a value that cannot be parsed.
        """

        def value(name: str) -> str | None:
            for alias in _ALIASES[name]:
                raw = query.get(alias)
                if raw is not None and str(raw).strip():
                    return str(raw).strip()
            return None

        statuses: tuple[ExecStatus, ...] = ()
        raw_status = value("statuses")
        if raw_status is not None:
            statuses = parse_statuses(raw_status)
        since_text, until_text = value("since"), value("until")
        return cls(
            module=value("module"),
            task_name=value("task_name"),
            statuses=statuses,
            device_serial=value("device_serial"),
            agent_uuid=value("agent_uuid"),
            created_by=value("created_by"),
            since=_parse_bound(since_text, end=False, name="start_date") if since_text else None,
            until=_parse_bound(until_text, end=True, name="end_date") if until_text else None,
            text=value("text"),
        )

    def to_query(self) -> dict[str, str]:
        """The inverse of ``from_query`` (times as epoch seconds), for links and exports."""
        out: dict[str, str] = {}
        for key, name in (("module", "module"), ("task_name", "task_name"),
                          ("device", "device_serial"), ("agent", "agent_uuid"),
                          ("created_by", "created_by"), ("search", "text")):
            current = getattr(self, name)
            if current:
                out[key] = current
        if self.statuses:
            out["status"] = ",".join(s.value for s in self.statuses)
        if self.since is not None:
            out["start_date"] = repr(self.since)
        if self.until is not None:
            out["end_date"] = repr(self.until)
        return out


@dataclass(frozen=True)
class Page:
    """One page of executions, newest first; ``next_cursor`` is ``None`` on the last."""

    items: tuple[ExecutionRecord, ...]
    next_cursor: Cursor | None = None


def parse_statuses(text: str) -> tuple[ExecStatus, ...]:
    """``"success,FAILURE"`` -> (SUCCESS, FAILURE); order kept, duplicates dropped."""
    out: list[ExecStatus] = []
    for part in text.split(","):
        name = part.strip().upper()
        if not name:
            continue
        try:
            status = ExecStatus(name)
        except ValueError:
            names = ", ".join(s.value for s in ExecStatus)
            raise ValidationError(f"invalid status {part.strip()!r}: use {names}",
                                  field="status") from None
        if status not in out:
            out.append(status)
    return tuple(out)


def encode_cursor(cursor: Cursor) -> str:
    """Text form of a keyset cursor for APIs: ``"<created_at>:<id>"``."""
    return f"{cursor[0]!r}:{cursor[1]}"


def decode_cursor(text: str) -> Cursor:
    created, sep, ident = text.strip().rpartition(":")
    try:
        if not sep:
            raise ValueError(text)
        return float(created), int(ident)
    except ValueError:
        raise ValidationError(f"invalid cursor {text!r}", field="cursor") from None


def _parse_bound(text: str, *, end: bool, name: str) -> float:
    if _DATE_ONLY.match(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValidationError(f"invalid date {text!r}", field=name) from None
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return (start + timedelta(days=1) if end else start).timestamp()
    try:
        return parse_time(text)
    except ValidationError as exc:
        raise ValidationError(exc.message, field=name) from None
