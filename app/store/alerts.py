"""Stored alerts with a persisted cooldown.

The watchdog and device-health checks run every minute; without a cooldown a
stuck schedule would raise an alert per minute. ``raise_alert`` with a
``cooldown_key`` stores at most one alert per key per ``cooldown_s``, and keeps
the last time in the ``AlertCooldown`` table, so a restart does not reset it
(reference 002 kept the cooldown in memory and alerted again after each restart).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.core.clock import iso
from app.core.clock import now as clock_now
from app.core.enums import AlertSeverity
from app.core.errors import NotFoundError, ValidationError
from app.store.db import database_proxy
from app.store.models import Alert, AlertCooldown

MAX_KIND = 64
MAX_SUBJECT = 255
MAX_KEY = 255
MAX_MESSAGE = 10_000
MAX_LIST = 10_000
DEFAULT_COOLDOWN_S = 1800.0


@dataclass(frozen=True)
class AlertRecord:
    id: int
    kind: str
    message: str
    severity: AlertSeverity
    created_at: float
    subject: str = ""
    acknowledged: bool = False

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "subject": self.subject,
            "severity": self.severity.value,
            "message": self.message,
            "created_at": iso(self.created_at),
            "acknowledged": self.acknowledged,
        }


def raise_alert(
    kind: str,
    message: str,
    *,
    subject: str = "",
    severity: AlertSeverity = AlertSeverity.WARNING,
    cooldown_key: str | None = None,
    cooldown_s: float = DEFAULT_COOLDOWN_S,
    now: float | None = None,
) -> AlertRecord | None:
    """Store an alert unless ``cooldown_key`` alerted less than ``cooldown_s`` ago.

    Returns:
        The stored alert, or ``None`` when the cooldown suppressed it.
    """
    kind = kind.strip() if isinstance(kind, str) else ""
    if not kind or len(kind) > MAX_KIND:
        raise ValidationError(f"alert kind: 1..{MAX_KIND} characters", field="kind")
    if not isinstance(message, str) or not message.strip():
        raise ValidationError("alert message is required", field="message")
    if len(subject) > MAX_SUBJECT:
        raise ValidationError(f"subject longer than {MAX_SUBJECT} characters", field="subject")
    try:
        severity = AlertSeverity(severity)
    except ValueError:
        raise ValidationError(f"invalid severity {severity!r}", field="severity") from None
    if cooldown_key is not None and not 0 < len(cooldown_key) <= MAX_KEY:
        raise ValidationError(f"cooldown key: 1..{MAX_KEY} characters", field="cooldown_key")
    if isinstance(cooldown_s, bool) or not isinstance(cooldown_s, int | float) or not (
        cooldown_s >= 0
    ):
        raise ValidationError("cooldown_s must be a number >= 0", field="cooldown_s")
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    at = clock_now() if now is None else now
    with database_proxy.atomic():
        if cooldown_key is not None and not _pass_cooldown(cooldown_key, float(cooldown_s), at):
            return None
        row = Alert.create(
            kind=kind,
            subject=subject,
            severity=severity.value,
            message=message,
            created_at=at,
            acknowledged=False,
        )
        return _record(row)


def list_alerts(limit: int = 200, unacknowledged_only: bool = False) -> list[AlertRecord]:
    """Newest first."""
    if not 1 <= limit <= MAX_LIST:
        raise ValidationError(f"limit must be 1..{MAX_LIST}", field="limit")
    query = Alert.select().order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit)
    if unacknowledged_only:
        query = query.where(Alert.acknowledged == False)  # noqa: E712 (peewee expression)
    return [_record(row) for row in query]


def acknowledge(alert_id: int) -> AlertRecord:
    """Mark an alert seen (idempotent). Raises NotFoundError for an unknown id."""
    with database_proxy.atomic():
        if not Alert.update(acknowledged=True).where(Alert.id == alert_id).execute():
            raise NotFoundError(f"no alert {alert_id}")
        return _record(Alert.get_by_id(alert_id))


def purge_alerts(*, older_than: float) -> int:
    """Delete alerts created before ``older_than`` and cooldowns that ended by then."""
    with database_proxy.atomic():
        count = Alert.delete().where(Alert.created_at < older_than).execute()
        AlertCooldown.delete().where(AlertCooldown.last_at < older_than).execute()
    return int(count)


def _pass_cooldown(key: str, cooldown_s: float, at: float) -> bool:
    """Claim the cooldown slot for ``key`` at ``at``; False if it is still running.

    One conditional statement decides, so two processes raising the same alert
    at the same moment store it once.
    """
    claimed = (
        AlertCooldown.update(last_at=at)
        .where((AlertCooldown.key == key) & (AlertCooldown.last_at <= at - cooldown_s))
        .execute()
    )
    if claimed:
        return True
    inserted = (
        AlertCooldown.insert(key=key, last_at=at).on_conflict_ignore().as_rowcount().execute()
    )
    return bool(inserted)


def _record(row: Alert) -> AlertRecord:
    return AlertRecord(
        id=int(row.id),
        kind=str(row.kind),
        message=str(row.message),
        severity=AlertSeverity(row.severity),
        created_at=float(row.created_at),
        subject=str(row.subject),
        acknowledged=bool(row.acknowledged),
    )
