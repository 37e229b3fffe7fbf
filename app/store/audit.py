"""The audit log: who did what to which subject, for operator actions that matter.

Forced lock releases, maintenance toggles, settings edits and the like write one
row each. Details are JSON; callers must never put secret values in them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from app.core.clock import iso
from app.core.clock import now as clock_now
from app.core.errors import ValidationError
from app.store.db import database_proxy
from app.store.models import AuditLog

MAX_ACTOR = 128
MAX_ACTION = 64
MAX_SUBJECT = 255
MAX_LIST = 10_000


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: float
    actor: str
    action: str
    subject: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": iso(self.at),
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "detail": self.detail,
        }


def audit(
    actor: str,
    action: str,
    subject: str = "",
    detail: dict[str, Any] | None = None,
    *,
    now: float | None = None,
) -> None:
    """Append one audit row.

    Raises:
        ValidationError: empty/oversized actor or action, oversized subject, or a
            detail that is not a JSON object.
    """
    actor = _required_text(actor, "actor", MAX_ACTOR)
    action = _required_text(action, "action", MAX_ACTION)
    if len(subject) > MAX_SUBJECT:
        raise ValidationError(f"subject longer than {MAX_SUBJECT} characters", field="subject")
    payload: dict[str, Any] = {} if detail is None else detail
    if not isinstance(payload, dict):
        raise ValidationError("audit detail must be a JSON object", field="detail")
    try:
        json.dumps(payload)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"audit detail is not JSON: {exc}", field="detail") from exc
    with database_proxy.atomic():
        AuditLog.create(
            at=clock_now() if now is None else now,
            actor=actor,
            action=action,
            subject=subject,
            detail=payload,
        )


def list_audit(
    limit: int = 200, action: str | None = None, *, subject: str | None = None
) -> list[AuditRecord]:
    """Newest first; optionally only one action and/or one subject."""
    if not 1 <= limit <= MAX_LIST:
        raise ValidationError(f"limit must be 1..{MAX_LIST}", field="limit")
    query = AuditLog.select().order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(limit)
    if action is not None:
        query = query.where(AuditLog.action == action)
    if subject is not None:
        query = query.where(AuditLog.subject == subject)
    return [_record(row) for row in query]


def _record(row: AuditLog) -> AuditRecord:
    detail = row.detail if isinstance(row.detail, dict) else {}
    return AuditRecord(
        id=int(row.id),
        at=float(row.at),
        actor=str(row.actor),
        action=str(row.action),
        subject=str(row.subject),
        detail=detail,
    )


def _required_text(value: str, name: str, limit: int) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ValidationError(f"{name} is required", field=name)
    if len(text) > limit:
        raise ValidationError(f"{name} longer than {limit} characters", field=name)
    return text
