"""Audit log, alerts with a persisted cooldown, and persisted settings."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from app.core.enums import AlertSeverity
from app.core.errors import NotFoundError, ValidationError
from app.core.settings import VERSION_KEY
from app.store import alerts, settings
from app.store.audit import audit, list_audit
from app.store.db import close_database, open_database
from app.store.models import Alert, AuditLog, Setting

T0 = 1_700_000_000.0




# -- audit ---------------------------------------------------------------------------


def test_audit_rows_are_listed_newest_first_and_filtered(db) -> None:
    audit("alice", "device.maintenance", "ABC", {"on": True}, now=T0)
    audit("bob", "lock.force_release", "capture", now=T0 + 1)
    audit("alice", "device.maintenance", "DEF", {"on": False}, now=T0 + 2)
    rows = list_audit()
    assert [(r.actor, r.subject) for r in rows] == [("alice", "DEF"), ("bob", "capture"),
                                                    ("alice", "ABC")]
    assert rows[1].detail == {}
    assert [r.subject for r in list_audit(action="device.maintenance")] == ["DEF", "ABC"]
    assert [r.subject for r in list_audit(limit=1)] == ["DEF"]
    assert [r.action for r in list_audit(subject="capture")] == ["lock.force_release"]
    assert rows[0].to_api()["at"] == "2023-11-14T22:13:22.000Z"


@pytest.mark.parametrize(
    ("actor", "action", "subject", "detail"),
    [("", "a", "", None), ("x", " ", "", None), ("x" * 129, "a", "", None),
     ("x", "a", "s" * 256, None), ("x", "a", "", ["list"]), ("x", "a", "", {"f": object()})],
)
def test_bad_audit_input_writes_nothing(db, actor, action, subject, detail) -> None:
    with pytest.raises(ValidationError):
        audit(actor, action, subject, detail, now=T0)
    assert AuditLog.select().count() == 0


# -- alerts --------------------------------------------------------------------------


def test_alerts_are_stored_listed_and_acknowledged(db) -> None:
    first = alerts.raise_alert("battery.low", "ABC at 9 %", subject="ABC", now=T0)
    second = alerts.raise_alert("schedule.stuck", "nightly stuck", severity=AlertSeverity.ERROR,
                                now=T0 + 1)
    assert first is not None and second is not None
    assert (first.kind, first.subject, first.severity) == ("battery.low", "ABC",
                                                           AlertSeverity.WARNING)
    assert [a.id for a in alerts.list_alerts()] == [second.id, first.id]
    acked = alerts.acknowledge(first.id)
    assert acked.acknowledged
    assert alerts.acknowledge(first.id).acknowledged  # idempotent
    assert [a.id for a in alerts.list_alerts(unacknowledged_only=True)] == [second.id]
    with pytest.raises(NotFoundError):
        alerts.acknowledge(999_999)
    assert second.to_api()["severity"] == "error"


def test_cooldown_allows_one_alert_per_key_per_window(db) -> None:
    key = "watchdog:sched-1:stuck"
    assert alerts.raise_alert("stuck", "m", cooldown_key=key, cooldown_s=1800, now=T0)
    assert alerts.raise_alert("stuck", "m", cooldown_key=key, cooldown_s=1800,
                              now=T0 + 1799) is None
    # Another key is independent; no key means no cooldown.
    assert alerts.raise_alert("stuck", "m", cooldown_key="other", now=T0 + 10)
    assert alerts.raise_alert("stuck", "m", now=T0 + 11)
    assert alerts.raise_alert("stuck", "m", now=T0 + 12)
    assert alerts.raise_alert("stuck", "m", cooldown_key=key, cooldown_s=1800, now=T0 + 1800)
    assert alerts.raise_alert("stuck", "m", cooldown_key=key, cooldown_s=1800,
                              now=T0 + 1900) is None
    assert Alert.select().count() == 5


def test_cooldown_survives_a_restart(db, store_location: str) -> None:
    assert alerts.raise_alert("stuck", "m", cooldown_key="k", now=T0)
    close_database()
    open_database(store_location)
    assert alerts.raise_alert("stuck", "m", cooldown_key="k", now=T0 + 60) is None
    assert Alert.select().count() == 1


def test_simultaneous_alerts_with_one_key_store_one(db) -> None:
    barrier = threading.Barrier(6)
    results: list[Any] = []

    def fire() -> None:
        try:
            barrier.wait()
            results.append(alerts.raise_alert("stuck", "m", cooldown_key="race", now=T0))
        except BaseException as exc:  # asserted below
            results.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=fire) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sum(r is not None for r in results) == 1
    assert Alert.select().count() == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"kind": ""}, {"message": " "}, {"severity": "panic"}, {"subject": "s" * 256},
     {"cooldown_key": ""}, {"cooldown_s": -1}, {"cooldown_s": float("nan")}],
)
def test_bad_alert_input_stores_nothing(db, kwargs: dict) -> None:
    args = {"kind": "k", "message": "m", **kwargs}
    kind, message = args.pop("kind"), args.pop("message")
    with pytest.raises(ValidationError):
        alerts.raise_alert(kind, message, now=T0, **args)
    assert Alert.select().count() == 0


def test_purging_old_alerts(db) -> None:
    alerts.raise_alert("a", "old", now=T0)
    alerts.raise_alert("a", "new", now=T0 + 100)
    assert alerts.purge_alerts(older_than=T0 + 50) == 1
    assert [a.message for a in alerts.list_alerts()] == ["new"]


# -- settings ------------------------------------------------------------------------


def test_registered_settings_are_coerced_and_defaulted(db) -> None:
    assert settings.get_setting("api.port") == 8765  # registry default
    assert settings.get_setting("api.port", 1) == 1  # the caller's default wins
    assert settings.set_setting("api.port", "9000") == 9000
    assert settings.get_setting("api.port") == 9000
    assert settings.set_setting("gui.theme", "Dark") == "dark"
    assert settings.all_settings() == {"api.port": 9000, "gui.theme": "dark"}
    assert settings.delete_setting("api.port")
    assert settings.get_setting("api.port") == 8765
    assert not settings.delete_setting("api.port")


def test_bad_values_unknown_keys_and_secrets_are_refused(db) -> None:
    for key, value in [("api.port", 0), ("demo.phones", 201), ("gui.theme", "neon"),
                       ("maintenance.cleanup_cron", "0 2 * *"), ("api.prot", 8000),
                       ("api.token", "s3cret-token"), ("llm.api_key", "sk-secret")]:
        with pytest.raises(ValidationError):
            settings.set_setting(key, value)
    assert Setting.select().count() == 0


def test_set_settings_is_all_or_nothing(db) -> None:
    with pytest.raises(ValidationError):
        settings.set_settings({"api.port": 9000, "history.retention_days": 0})
    assert settings.all_settings() == {}
    assert settings.set_settings({"api.port": 9000, "history.retention_days": "90"}) == {
        "api.port": 9000, "history.retention_days": 90}


def test_meta_keys_hold_any_json_value(db) -> None:
    settings.set_setting("meta.instance", {"id": "ws-1", "n": [1, 2]})
    assert settings.get_setting("meta.instance") == {"id": "ws-1", "n": [1, 2]}
    assert settings.get_setting("meta.unset") is None
    with pytest.raises(ValidationError):
        settings.set_setting("meta.bad", {1, 2})


def test_a_corrupt_stored_value_falls_back_to_the_default(db) -> None:
    Setting.create(key="api.port", value="not a port", updated_at=T0)
    assert settings.get_setting("api.port") == 8765
    loaded = settings.load_settings()
    assert loaded.get("api.port") == 8765 and loaded.problems


def test_load_settings_stamps_a_fresh_store_with_the_current_version(db) -> None:
    loaded = settings.load_settings(upgrades=(_rename_port, _double_phones), now=T0)
    assert loaded.get("api.port") == 8765
    assert settings.get_setting(VERSION_KEY) == 2


def test_load_settings_runs_pending_upgrades_once(db) -> None:
    # Written by an older TaskDesk (version 0): the port lived under "api.listen_port".
    Setting.create(key="api.listen_port", value=9100, updated_at=T0)
    Setting.create(key="demo.phones", value=5, updated_at=T0)
    Setting.create(key=VERSION_KEY, value=0, updated_at=T0)
    upgrades = (_rename_port, _double_phones)
    loaded = settings.load_settings(upgrades=upgrades, now=T0 + 1)
    assert (loaded.get("api.port"), loaded.get("demo.phones")) == (9100, 10)
    assert settings.all_settings() == {"api.port": 9100, "demo.phones": 10, VERSION_KEY: 2}
    again = settings.load_settings(upgrades=upgrades, now=T0 + 2)
    assert again.get("demo.phones") == 10  # not doubled twice


def test_settings_from_a_newer_version_are_left_alone(db) -> None:
    Setting.create(key="demo.phones", value=7, updated_at=T0)
    Setting.create(key=VERSION_KEY, value=5, updated_at=T0)
    loaded = settings.load_settings(upgrades=(_double_phones,))
    assert loaded.get("demo.phones") == 7
    assert settings.get_setting(VERSION_KEY) == 5


def _rename_port(values: dict[str, Any]) -> None:
    if "api.listen_port" in values:
        values["api.port"] = values.pop("api.listen_port")


def _double_phones(values: dict[str, Any]) -> None:
    if "demo.phones" in values:
        values["demo.phones"] = values["demo.phones"] * 2
