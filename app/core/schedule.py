"""Schedule math: cron (5 fields and @descriptors) and intervals."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from app.core.errors import ValidationError

MIN_INTERVAL_S = 60
DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def validate_cron(expr: str) -> str:
    text = " ".join(expr.split())
    if text in DESCRIPTORS:
        return text
    if len(text.split(" ")) != 5 or not croniter.is_valid(text):
        raise ValidationError(
            f"invalid cron expression {expr!r}: use 5 fields (min hour day month weekday) "
            "or @hourly/@daily/@weekly/@monthly/@yearly",
            field="cron",
        )
    return text


def validate_interval(seconds: int) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < MIN_INTERVAL_S:
        raise ValidationError(f"interval must be at least {MIN_INTERVAL_S} seconds",
                              field="interval_s")
    return seconds


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"unknown timezone {name!r}", field="timezone") from exc


def next_cron(expr: str, after: float, tz: str = "UTC") -> float:
    """First fire time strictly after ``after`` (epoch seconds), in ``tz`` wall time."""
    start = datetime.fromtimestamp(after, tz=zone(tz))
    nxt: datetime = croniter(validate_cron(expr), start).get_next(datetime)
    return nxt.timestamp()
