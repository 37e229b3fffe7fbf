"""Device rows: sightings keep operator fields and known metadata; battery series."""

from __future__ import annotations

import threading

import pytest

from app.core.enums import DeviceState
from app.core.errors import NotFoundError, ValidationError
from app.core.records import DeviceRecord
from app.store import devices
from app.store.models import BatterySample, Device

T0 = 1_700_000_000.0




def _pixel(now: float, **overrides) -> DeviceRecord:
    fields = dict(
        state=DeviceState.ONLINE, transport="usb", model="Pixel 7", manufacturer="Google",
        android_version="14", sdk=34, abi="arm64-v8a", usb_path="usb:1-1", now=now,
    )
    fields.update(overrides)
    return devices.upsert_device("ABC123", **fields)


def test_first_sighting_creates_the_device(db) -> None:
    rec = _pixel(T0)
    assert rec.serial == "ABC123" and rec.state is DeviceState.ONLINE
    assert (rec.model, rec.manufacturer, rec.android_version, rec.sdk) == (
        "Pixel 7", "Google", "14", 34)
    assert (rec.abi, rec.usb_path, rec.transport) == ("arm64-v8a", "usb:1-1", "usb")
    assert (rec.first_seen, rec.last_seen) == (T0, T0)
    assert rec.tags == () and rec.nickname == "" and not rec.maintenance
    assert devices.get_device("ABC123") == rec


def test_a_state_only_report_keeps_metadata_and_first_seen(db) -> None:
    _pixel(T0)
    rec = devices.upsert_device("ABC123", state=DeviceState.OFFLINE, now=T0 + 60)
    assert rec.state is DeviceState.OFFLINE
    assert (rec.model, rec.android_version, rec.sdk, rec.usb_path) == (
        "Pixel 7", "14", 34, "usb:1-1")
    assert (rec.first_seen, rec.last_seen) == (T0, T0 + 60)
    newer = _pixel(T0 + 120, android_version="15", sdk=35)
    assert (newer.android_version, newer.sdk, newer.first_seen) == ("15", 35, T0)


def test_gone_is_not_seen(db) -> None:
    _pixel(T0)
    rec = devices.upsert_device("ABC123", state=DeviceState.ABSENT, now=T0 + 60)
    assert rec.state is DeviceState.ABSENT and rec.last_seen == T0
    marked = devices.mark_state("ABC123", DeviceState.ONLINE, now=T0 + 90)
    assert marked is not None and marked.last_seen == T0 + 90
    again = devices.mark_state("ABC123", DeviceState.ABSENT, now=T0 + 95)
    assert again is not None and again.last_seen == T0 + 90


def test_sightings_never_overwrite_operator_fields(db) -> None:
    _pixel(T0)
    devices.update_device("ABC123", nickname="bench 3", tags=["lab", "camera"],
                          notes="cracked screen", maintenance=True)
    rec = _pixel(T0 + 5, state=DeviceState.UNAUTHORIZED)
    assert (rec.nickname, rec.tags, rec.notes, rec.maintenance) == (
        "bench 3", ("camera", "lab"), "cracked screen", True)


def test_mark_state_of_an_unknown_device_is_none(db) -> None:
    assert devices.mark_state("nope", DeviceState.ONLINE, now=T0) is None
    assert Device.select().count() == 0


def test_get_and_list(db) -> None:
    devices.upsert_device("ZZZ", state=DeviceState.ONLINE, now=T0)
    devices.upsert_device("AAA", state=DeviceState.OFFLINE, now=T0)
    assert [d.serial for d in devices.list_devices()] == ["AAA", "ZZZ"]
    with pytest.raises(NotFoundError):
        devices.get_device("missing")


def test_update_device_validates_before_changing_anything(db) -> None:
    _pixel(T0)
    with pytest.raises(ValidationError) as err:
        devices.update_device("ABC123", nickname="new name", tags=["ok", "not ok!"])
    assert err.value.field == "tags"
    assert devices.get_device("ABC123").nickname == ""
    rec = devices.update_device("ABC123", tags=[" lab ", "lab", "b-2"], nickname="  n  ")
    assert rec.tags == ("b-2", "lab") and rec.nickname == "n"
    assert devices.update_device("ABC123", tags=[]).tags == ()
    for bad in ({"tags": "lab"}, {"tags": [f"t{i}" for i in range(33)]},
                {"nickname": "x" * 129}, {"nickname": "a\tb"}, {"maintenance": "yes"},
                {"notes": "n" * 10_001}):
        with pytest.raises(ValidationError):
            devices.update_device("ABC123", **bad)
    with pytest.raises(NotFoundError):
        devices.update_device("missing", nickname="x")
    with pytest.raises(NotFoundError):
        devices.update_device("missing")


@pytest.mark.parametrize(
    ("serial", "fields"),
    [("", {}), ("has space", {}), ("x" * 129, {}), ("ok", {"state": "sleepy"}),
     ("ok", {"sdk": -1}), ("ok", {"sdk": "34"}), ("ok", {"model": "m" * 129})],
)
def test_invalid_sightings_change_nothing(db, serial: str, fields: dict) -> None:
    kwargs = {"state": DeviceState.ONLINE, **fields}
    with pytest.raises(ValidationError):
        devices.upsert_device(serial, now=T0, **kwargs)
    assert Device.select().count() == 0


def test_battery_samples_update_the_tile_and_form_a_series(db) -> None:
    _pixel(T0)
    for i in range(5):
        devices.record_battery("ABC123", level=90 - i, temperature=30.0 + i, charging=i % 2 == 0,
                               now=T0 + 60 * i)
    rec = devices.get_device("ABC123")
    assert (rec.battery_level, rec.battery_temp, rec.charging) == (86, 34.0, True)
    series = devices.battery_series("ABC123", since=T0 + 60)
    assert series == [(T0 + 60, 89, 31.0), (T0 + 120, 88, 32.0), (T0 + 180, 87, 33.0),
                      (T0 + 240, 86, 34.0)]
    # Over the limit: the latest samples, still oldest first.
    assert devices.battery_series("ABC123", since=0, limit=2) == series[-2:]
    devices.record_battery("ABC123", level=None, temperature=None, charging=None, now=T0 + 300)
    assert devices.battery_series("ABC123", since=T0 + 300) == [(T0 + 300, None, None)]
    assert devices.get_device("ABC123").battery_level is None
    assert devices.purge_battery_samples(older_than=T0 + 120) == 2
    assert len(devices.battery_series("ABC123", since=0)) == 4


@pytest.mark.parametrize(
    "fields",
    [{"level": 101}, {"level": -1}, {"level": True}, {"temperature": float("nan")},
     {"temperature": 500.0}, {"charging": "yes"}],
)
def test_invalid_battery_samples_store_nothing(db, fields: dict) -> None:
    _pixel(T0)
    sample = {"level": 50, "temperature": 30.0, "charging": True, **fields}
    with pytest.raises(ValidationError):
        devices.record_battery("ABC123", now=T0, **sample)
    assert BatterySample.select().count() == 0
    assert devices.get_device("ABC123").battery_level is None


def test_battery_of_an_unknown_device_is_refused(db) -> None:
    with pytest.raises(NotFoundError):
        devices.record_battery("ghost", level=50, temperature=30.0, charging=False, now=T0)
    assert BatterySample.select().count() == 0


def test_concurrent_first_sightings_make_one_row(db) -> None:
    """Two discovery paths reporting a new phone at once must not collide."""
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def report(n: int) -> None:
        try:
            barrier.wait()
            devices.upsert_device("NEW1", state=DeviceState.ONLINE, model=f"m{n}", now=T0 + n)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            db.close()  # this thread's connection

    threads = [threading.Thread(target=report, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Device.select().where(Device.serial == "NEW1").count() == 1
