"""Persisted settings: the ``Setting`` table (key → JSON value).

Keys of the registry (``app.core.settings.REGISTRY``) are validated and coerced
before they are stored; secret keys are refused (secrets live in the keyring).
The ``meta.`` namespace holds the store's own bookkeeping (the settings
version, instance ids) and accepts any JSON value. Any other key is a typo and
is refused, so a misspelt setting never silently does nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from app.core.clock import now as clock_now
from app.core.errors import ValidationError
from app.core.settings import (
    REGISTRY,
    UPGRADES,
    VERSION_KEY,
    Settings,
    Upgrade,
    current_version,
    upgrade_values,
)
from app.store.db import database_proxy
from app.store.models import Setting

META_PREFIX = "meta."
MAX_KEY = 128
_MISSING: Any = object()


def get_setting(key: str, default: Any = _MISSING) -> Any:
    """The stored value of ``key``.

    Without a stored (valid) value: ``default`` when given, else the registry
    default for a registered key, else ``None``.
    """
    spec = REGISTRY.get(key)
    fallback = default if default is not _MISSING else (spec.default if spec else None)
    row = Setting.get_or_none(Setting.key == key)
    if row is None:
        return fallback
    if spec is None:
        return row.value
    try:
        return spec.validate(row.value)
    except ValidationError:
        return fallback


def set_setting(key: str, value: Any, *, now: float | None = None) -> Any:
    """Validate and store one value; returns the value as stored (coerced)."""
    return set_settings({key: value}, now=now)[key]


def set_settings(values: Mapping[str, Any], *, now: float | None = None) -> dict[str, Any]:
    """Store several values in one transaction; one bad value changes nothing."""
    clean = {key: _validate(key, value) for key, value in values.items()}
    at = clock_now() if now is None else now
    with database_proxy.atomic():
        for key, value in clean.items():
            _write(key, value, at)
    return clean


def delete_setting(key: str) -> bool:
    """Forget a stored value (the registry default applies again)."""
    with database_proxy.atomic():
        return bool(Setting.delete().where(Setting.key == key).execute())


def all_settings() -> dict[str, Any]:
    """Every stored row, raw (registry keys and ``meta.`` bookkeeping alike)."""
    return {str(row.key): row.value for row in Setting.select().order_by(Setting.key)}


def load_settings(*, upgrades: Sequence[Upgrade] = UPGRADES,
                  now: float | None = None) -> Settings:
    """The effective settings, upgrading stored values first if they are older.

    A store without any setting starts at the current version. Upgraded values
    and the new version are written back in one transaction.
    """
    with database_proxy.atomic():
        raw = all_settings()
        stored_version = raw.pop(VERSION_KEY, None)
        if stored_version is None:
            version = 0 if any(not k.startswith(META_PREFIX) for k in raw) else -1
        elif isinstance(stored_version, int) and not isinstance(stored_version, bool):
            version = stored_version
        else:
            raise ValidationError(f"invalid stored settings version {stored_version!r}")
        if version == -1:
            values, new_version = raw, current_version(upgrades)
        else:
            values, new_version = upgrade_values(raw, version, upgrades)
        if new_version != stored_version:
            at = clock_now() if now is None else now
            for key in raw.keys() - values.keys():
                Setting.delete().where(Setting.key == key).execute()
            for key, value in values.items():
                if key not in raw or raw[key] != value:
                    _write(key, value, at)
            _write(VERSION_KEY, new_version, at)
    return Settings(values)


def _validate(key: str, value: Any) -> Any:
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY:
        raise ValidationError(f"setting key: 1..{MAX_KEY} characters", field="key")
    spec = REGISTRY.get(key)
    if spec is not None:
        return spec.validate(value)
    if not key.startswith(META_PREFIX):
        raise ValidationError(f"unknown setting {key!r}", field=key)
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{key}: not a JSON value ({exc})", field=key) from exc
    return value


def _write(key: str, value: Any, at: float) -> None:
    (
        Setting.insert(key=key, value=value, updated_at=at)
        .on_conflict(
            conflict_target=[Setting.key],
            update={Setting.value: value, Setting.updated_at: at},
        )
        .execute()
    )
