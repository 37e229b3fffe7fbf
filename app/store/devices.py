"""Devices as the store remembers them, and their battery time series.

The store never imports ``app.devices``: the engine passes the provider's
``DeviceInfo`` fields as plain keywords. Discovery reports a device many times;
``upsert_device`` keeps what an operator set (nickname, tags, notes,
maintenance) and only overwrites probed metadata with non-empty values, so a
state-only report (metadata is empty unless the phone is online) never blanks
the model or Android version shown on a tile.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, cast

from app.core.clock import now as clock_now
from app.core.enums import DeviceState
from app.core.errors import NotFoundError, ValidationError
from app.core.records import DeviceRecord
from app.core.targets import Target
from app.store.db import database_proxy
from app.store.models import BatterySample, Device

MAX_SERIAL = 128
MAX_NICKNAME = 128
MAX_NOTES = 10_000
MAX_TAGS = 32
MAX_SERIES = 100_000


def upsert_device(
    serial: str,
    *,
    state: DeviceState,
    transport: str = "",
    model: str = "",
    manufacturer: str = "",
    android_version: str = "",
    sdk: int | None = None,
    abi: str = "",
    usb_path: str = "",
    now: float | None = None,
) -> DeviceRecord:
    """Record a sighting: create the device or update its state and metadata.

    ``first_seen`` is set once; ``last_seen`` moves to ``now`` unless the device
    is reported ``ABSENT`` (gone is not seen). Empty metadata keeps what is stored.
    """
    serial = _validate_serial(serial)
    state = _validate_state(state)
    at = clock_now() if now is None else now
    metadata: dict[str, Any] = {
        "transport": transport,
        "model": model,
        "manufacturer": manufacturer,
        "android_version": android_version,
        "abi": abi,
        "usb_path": usb_path,
    }
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise ValidationError(f"{key} must be text", field=key)
        limit = Device._meta.fields[key].max_length
        if len(value) > limit:
            raise ValidationError(f"{key} longer than {limit} characters", field=key)
    if sdk is not None and (isinstance(sdk, bool) or not isinstance(sdk, int) or sdk < 0):
        raise ValidationError(f"invalid sdk {sdk!r}", field="sdk")
    changes: dict[Any, Any] = {Device.state: state.value}
    changes.update({Device._meta.fields[k]: v for k, v in metadata.items() if v})
    if sdk is not None:
        changes[Device.sdk] = sdk
    if state is not DeviceState.ABSENT:
        changes[Device.last_seen] = at
    with database_proxy.atomic():
        # Insert-if-absent then update: portable, and race-free when two threads
        # or workstations report the same new phone at once.
        Device.insert(
            serial=serial,
            state=state.value,
            tags=[],
            first_seen=at,
            last_seen=at,
        ).on_conflict_ignore().as_rowcount().execute()
        Device.update(changes).where(Device.serial == serial).execute()
        return _record(Device.get_by_id(serial))


def mark_state(
    serial: str, state: DeviceState, *, now: float | None = None
) -> DeviceRecord | None:
    """Change only the connection state of a known device; ``None`` if unknown."""
    state = _validate_state(state)
    at = clock_now() if now is None else now
    changes: dict[Any, Any] = {Device.state: state.value}
    if state is not DeviceState.ABSENT:
        changes[Device.last_seen] = at
    with database_proxy.atomic():
        if not Device.update(changes).where(Device.serial == serial).execute():
            return None
        return _record(Device.get_by_id(serial))


def get_device(serial: str) -> DeviceRecord:
    """Raises NotFoundError for an unknown serial."""
    row = Device.get_or_none(Device.serial == serial)
    if row is None:
        raise NotFoundError(f"no device {serial!r}")
    return _record(row)


def list_devices() -> list[DeviceRecord]:
    """Every known device (including absent ones), ordered by serial."""
    return [_record(row) for row in Device.select().order_by(Device.serial)]


def update_device(
    serial: str,
    *,
    nickname: str | None = None,
    tags: list[str] | tuple[str, ...] | None = None,
    notes: str | None = None,
    maintenance: bool | None = None,
) -> DeviceRecord:
    """Edit the operator's fields; ``None`` leaves a field as it is.

    Tags follow the selector rule (letters, digits, ``_.-``, up to 64 characters)
    so every tag can be targeted; they are stored de-duplicated and sorted.

    Raises:
        ValidationError: bad input (nothing changed). NotFoundError: unknown serial.
    """
    changes: dict[Any, Any] = {}
    if nickname is not None:
        nickname = nickname.strip()
        if len(nickname) > MAX_NICKNAME or not nickname.isprintable():
            raise ValidationError(
                f"nickname: up to {MAX_NICKNAME} printable characters", field="nickname"
            )
        changes[Device.nickname] = nickname
    if tags is not None:
        changes[Device.tags] = list(_validate_tags(tags))
    if notes is not None:
        if len(notes) > MAX_NOTES:
            raise ValidationError(f"notes longer than {MAX_NOTES} characters", field="notes")
        changes[Device.notes] = notes
    if maintenance is not None:
        if not isinstance(maintenance, bool):
            raise ValidationError("maintenance must be true or false", field="maintenance")
        changes[Device.maintenance] = maintenance
    with database_proxy.atomic():
        if changes:
            found = Device.update(changes).where(Device.serial == serial).execute()
        else:
            found = Device.select().where(Device.serial == serial).count()
        if not found:
            raise NotFoundError(f"no device {serial!r}")
        return _record(Device.get_by_id(serial))


def record_battery(
    serial: str,
    *,
    level: int | None,
    temperature: float | None,
    charging: bool | None,
    now: float | None = None,
) -> None:
    """Append a battery sample and copy it onto the device row (for the tile).

    Raises:
        ValidationError: level outside 0..100 or a non-finite temperature.
        NotFoundError: unknown serial (no sample is stored).
    """
    if level is not None and (isinstance(level, bool) or not isinstance(level, int)
                              or not 0 <= level <= 100):
        raise ValidationError(f"battery level must be 0..100, not {level!r}", field="level")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, int | float):
            raise ValidationError("temperature must be a number", field="temperature")
        if not math.isfinite(temperature) or not -60.0 <= temperature <= 200.0:
            raise ValidationError(f"implausible temperature {temperature!r}", field="temperature")
        temperature = float(temperature)
    if charging is not None and not isinstance(charging, bool):
        raise ValidationError("charging must be true, false or unknown", field="charging")
    at = clock_now() if now is None else now
    with database_proxy.atomic():
        found = (
            Device.update(battery_level=level, battery_temp=temperature, charging=charging)
            .where(Device.serial == serial)
            .execute()
        )
        if not found:
            raise NotFoundError(f"no device {serial!r}")
        BatterySample.create(
            serial=serial, at=at, level=level, temperature=temperature, charging=charging
        )


def battery_series(
    serial: str, *, since: float, limit: int = 2000
) -> list[tuple[float, int | None, float | None]]:
    """``(at, level, temperature)`` samples at or after ``since``, oldest first.

    When more than ``limit`` samples match, the most recent ``limit`` are
    returned: a chart wants the latest stretch, not the oldest.
    """
    if not 1 <= limit <= MAX_SERIES:
        raise ValidationError(f"limit must be 1..{MAX_SERIES}", field="limit")
    query = (
        BatterySample.select(BatterySample.at, BatterySample.level, BatterySample.temperature)
        .where((BatterySample.serial == serial) & (BatterySample.at >= since))
        .order_by(BatterySample.at.desc(), BatterySample.id.desc())
        .limit(limit)
        .tuples()
    )
    rows = [
        (float(at), None if level is None else int(level), None if temp is None else float(temp))
        for at, level, temp in cast(Iterable[tuple[Any, Any, Any]], query)
    ]
    rows.reverse()
    return rows


def purge_battery_samples(*, older_than: float) -> int:
    """Delete samples taken before ``older_than`` (epoch seconds)."""
    with database_proxy.atomic():
        return int(BatterySample.delete().where(BatterySample.at < older_than).execute())


def _record(row: Device) -> DeviceRecord:
    tags = row.tags if isinstance(row.tags, list) else []
    return DeviceRecord(
        serial=str(row.serial),
        state=DeviceState(row.state),
        transport=str(row.transport),
        model=str(row.model),
        manufacturer=str(row.manufacturer),
        android_version=str(row.android_version),
        sdk=None if row.sdk is None else int(row.sdk),
        abi=str(row.abi),
        usb_path=str(row.usb_path),
        nickname=str(row.nickname),
        tags=tuple(str(t) for t in tags),
        notes=str(row.notes),
        maintenance=bool(row.maintenance),
        battery_level=None if row.battery_level is None else int(row.battery_level),
        battery_temp=None if row.battery_temp is None else float(row.battery_temp),
        charging=None if row.charging is None else bool(row.charging),
        first_seen=None if row.first_seen is None else float(row.first_seen),
        last_seen=None if row.last_seen is None else float(row.last_seen),
        last_error=row.last_error,
    )


def _validate_serial(serial: str) -> str:
    if (
        not isinstance(serial, str)
        or not serial
        or len(serial) > MAX_SERIAL
        or not serial.isprintable()
        or any(c.isspace() for c in serial)
    ):
        raise ValidationError(f"invalid device serial {serial!r}", field="serial")
    return serial


def _validate_state(state: DeviceState | str) -> DeviceState:
    try:
        return DeviceState(state)
    except ValueError:
        raise ValidationError(f"invalid device state {state!r}", field="state") from None


def _validate_tags(tags: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(tags, str) or not isinstance(tags, list | tuple):
        raise ValidationError("tags must be a list of strings", field="tags")
    if any(not isinstance(t, str) for t in tags):
        raise ValidationError("tags must be a list of strings", field="tags")
    if not any(t.strip() for t in tags):
        return ()
    try:
        clean = Target.selector(tags=tags).tags
    except ValidationError as exc:
        raise ValidationError(exc.message, field="tags") from None
    if len(clean) > MAX_TAGS:
        raise ValidationError(f"at most {MAX_TAGS} tags", field="tags")
    return clean
