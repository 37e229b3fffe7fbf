"""The typed settings registry: declared defaults, coercion, limits, secrets, upgrades."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.errors import ValidationError
from app.core.settings import (
    REGISTRY,
    UPGRADES,
    Settings,
    check_cron,
    current_version,
    get_spec,
    upgrade_values,
    validate,
)

REQUIRED_DEFAULTS = {
    "adb.host": "127.0.0.1",
    "adb.port": 5037,
    "demo.phones": 12,
    "engine.lease_s": 30,
    "engine.max_tasks_per_job": 1,
    "engine.device_lost_grace_s": 10,
    "engine.battery_interval_s": 60,
    "engine.rate_limit_per_device": 0,
    "engine.rate_window_s": 3600,
    "history.retention_days": 30,
    "history.timeout_minutes": 10,
    "maintenance.cleanup_cron": "0 2 * * *",
    "maintenance.timeout_sweep_cron": "*/30 * * * *",
    "api.bind": "127.0.0.1",
    "api.port": 8765,
    "gui.theme": "system",
    "gui.tile_thumbnails": False,
}


def test_the_documented_settings_exist_with_their_defaults() -> None:
    for key, default in REQUIRED_DEFAULTS.items():
        assert REGISTRY[key].default == default, key
        assert REGISTRY[key].label, key


@pytest.mark.parametrize("key", sorted(REGISTRY))
def test_every_default_passes_its_own_validation(key: str) -> None:
    spec = REGISTRY[key]
    if spec.secret:
        assert spec.default is None
        return
    assert spec.validate(spec.default) == spec.default


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("gui.tile_thumbnails", "yes", True),
        ("gui.tile_thumbnails", "OFF", False),
        ("gui.tile_thumbnails", True, True),
        ("demo.phones", "200", 200),
        ("demo.phones", 1, 1),
        ("demo.phones", 7.0, 7),
        ("engine.lease_s", "12.5", 12.5),
        ("engine.lease_s", 45, 45.0),
        ("gui.theme", " Dark ", "dark"),
        ("maintenance.cleanup_cron", "@daily", "@daily"),
        ("maintenance.timeout_sweep_cron", " */15 * * * * ", "*/15 * * * *"),
        ("api.bind", "0.0.0.0", "0.0.0.0"),
    ],
)
def test_values_are_coerced_to_the_declared_type(key: str, value: Any, expected: Any) -> None:
    got = validate(key, value)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("demo.phones", 0),
        ("demo.phones", 201),
        ("demo.phones", 7.5),
        ("demo.phones", True),
        ("demo.phones", "many"),
        ("engine.max_tasks_per_job", 51),
        ("history.retention_days", 3651),
        ("history.timeout_minutes", 1441),
        ("engine.lease_s", float("inf")),
        ("engine.lease_s", "nan"),
        ("gui.tile_thumbnails", "maybe"),
        ("gui.tile_thumbnails", 1),
        ("gui.theme", "neon"),
        ("maintenance.cleanup_cron", "0 2 * *"),
        ("maintenance.cleanup_cron", "0 0 2 * * *"),
        ("maintenance.cleanup_cron", "61 * * * *"),
        ("api.bind", "local host"),
        ("api.bind", "http://x"),
        ("api.port", 70000),
        ("adb.path", "a\nb"),
        ("adb.path", 5),
    ],
)
def test_bad_values_are_refused_with_the_key_named(key: str, value: Any) -> None:
    with pytest.raises(ValidationError) as err:
        validate(key, value)
    assert err.value.field == key
    assert REGISTRY[key].label in err.value.message


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ValidationError) as err:
        validate("api.prot", 1)
    assert err.value.field == "api.prot"
    with pytest.raises(ValidationError):
        get_spec("nope")


def test_secret_specs_name_a_keyring_entry_and_hold_no_value() -> None:
    secrets = [spec for spec in REGISTRY.values() if spec.secret]
    assert {s.key for s in secrets} >= {"api.token", "llm.api_key"}
    token = REGISTRY["api.token"]
    assert token.keyring_entry == "api.token"
    assert "default" not in token.describe()
    with pytest.raises(ValidationError):
        token.validate("s3cret")
    with pytest.raises(ValidationError):
        REGISTRY["api.port"].keyring_entry  # noqa: B018 - the access is the test
    settings = Settings({"api.token": "s3cret"})
    with pytest.raises(ValidationError):
        settings.get("api.token")
    assert "api.token" not in settings.as_dict()
    assert "s3cret" not in repr(settings.as_dict())


def test_describe_gives_editors_what_they_need() -> None:
    phones = REGISTRY["demo.phones"].describe()
    assert phones == {"key": "demo.phones", "type": "int", "label": phones["label"],
                      "help": phones["help"], "secret": False, "default": 12,
                      "minimum": 1, "maximum": 200}
    assert REGISTRY["gui.theme"].describe()["choices"] == ["system", "light", "dark"]
    assert REGISTRY["api.port"].section == "api"


def test_settings_overlay_validated_values_on_defaults() -> None:
    settings = Settings({"api.port": "9000", "demo.phones": 500, "removed.key": 1,
                         "meta.settings_version": 0})
    assert settings.get_int("api.port") == 9000
    assert settings.get_int("demo.phones") == 12  # invalid stored value: default
    assert len(settings.problems) == 1 and "200" in settings.problems[0]
    assert settings.overrides() == {"api.port": 9000}
    assert settings.get_float("engine.lease_s") == 30.0
    assert settings.get_bool("gui.tile_thumbnails") is False
    assert settings.get_str("gui.theme") == "system"
    assert settings["adb.port"] == 5037
    assert settings.set("gui.theme", "LIGHT") == "light"
    with pytest.raises(ValidationError):
        settings.set("gui.theme", "neon")
    assert settings.get("gui.theme") == "light"
    settings.reset("gui.theme")
    assert settings.get("gui.theme") == "system"
    with pytest.raises(TypeError):
        settings.get_int("gui.theme")
    with pytest.raises(ValidationError):
        settings.get("unknown.key")
    full = settings.as_dict()
    assert full["api.port"] == 9000 and full["history.retention_days"] == 30


def test_cron_check_accepts_descriptors_and_five_fields_only() -> None:
    check_cron("@hourly")
    check_cron("0 2 * * 1-5")
    for bad in ("", "@reboot", "* * * *", "* * * * * *", "0 25 * * *"):
        with pytest.raises(ValidationError):
            check_cron(bad)


def _add_suffix(values: dict[str, Any]) -> None:
    values["trail"] = values.get("trail", "") + "1"


def _add_other(values: dict[str, Any]) -> None:
    values["trail"] = values.get("trail", "") + "2"


def test_upgrades_run_in_order_from_the_stored_version() -> None:
    steps = (_add_suffix, _add_other)
    raw = {"a": 1}
    assert upgrade_values(raw, 0, steps) == ({"a": 1, "trail": "12"}, 2)
    assert upgrade_values(raw, 1, steps) == ({"a": 1, "trail": "2"}, 2)
    assert upgrade_values(raw, 2, steps) == ({"a": 1}, 2)
    assert upgrade_values(raw, 9, steps) == ({"a": 1}, 9)  # newer: left alone
    assert raw == {"a": 1}  # the input is never modified
    with pytest.raises(ValidationError):
        upgrade_values(raw, -1, steps)
    assert current_version(steps) == 2
    assert current_version() == len(UPGRADES)
