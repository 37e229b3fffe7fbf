"""Alerts the engine raises for operators: stored (with a persisted cooldown so a
flapping condition does not flood the list, even across restarts) and published on
the bus for the console and desktop notifications."""

from __future__ import annotations

import logging

from app.core.enums import AlertSeverity
from app.engine.bus import AlertRaised, EventBus
from app.engine.storethread import StoreThread

log = logging.getLogger(__name__)

COOLDOWN_S = 1800.0


class AlertService:
    def __init__(self, store: StoreThread, bus: EventBus) -> None:
        self._store = store
        self._bus = bus

    async def raise_alert(self, kind: str, message: str, *, subject: str = "",
                          severity: AlertSeverity = AlertSeverity.WARNING,
                          cooldown_key: str | None = None,
                          cooldown_s: float = COOLDOWN_S) -> bool:
        """Record and publish an alert; False when its cooldown suppressed it."""
        from app.store import alerts

        try:
            record = await self._store.call(
                alerts.raise_alert, kind, message, subject=subject, severity=severity,
                cooldown_key=cooldown_key or f"{kind}:{subject}", cooldown_s=cooldown_s)
        except Exception:
            log.exception("could not record alert %s", kind)
            record = None
        if record is None:
            return False
        log.warning("alert %s: %s", kind, message)
        self._bus.publish(AlertRaised(kind=kind, message=message, severity=severity.value,
                                      subject=subject))
        return True
