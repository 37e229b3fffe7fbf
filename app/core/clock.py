"""Time helpers. The store keeps every timestamp as float epoch seconds (UTC)."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> float:
    return time.time()


def iso(ts: float | None) -> str | None:
    """ISO-8601 UTC text for APIs and exports (``None`` stays ``None``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def parse_time(text: str) -> float:
    """Parse ISO-8601 (date or datetime; naive means UTC) or epoch seconds/ms."""
    from app.core.errors import ValidationError

    raw = text.strip()
    try:
        value = float(raw)
    except ValueError:
        pass
    else:
        return value / 1000.0 if value > 1e11 else value
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationError(f"invalid time {text!r}: use ISO-8601 or epoch seconds") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
