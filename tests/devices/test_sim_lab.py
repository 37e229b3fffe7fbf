"""Lab events as adb and adbutils see them: unplug/plug, unauthorised, reboot, server crash.

These protect what device tracking in the engine and the console's tiles rely
on: adb notices an unplugged phone within a second through ``track-devices``,
plugged phones come back online, an unauthorised phone is listed as such, and
after an adb server crash and restart every phone is back.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable

import adbutils
import pytest

from app.devices.adbserver import AdbServerError, host_request
from app.devices.sim import SimLab

pytest_plugins = ("tests.devices.simfixtures",)

Event = tuple[float, object]


class Tracker:
    """adbutils' ``track_devices()`` in a thread, events time-stamped on arrival."""

    def __init__(self, lab: SimLab) -> None:
        self.events: queue.Queue[Event] = queue.Queue()
        client = adbutils.AdbClient(host=lab.adb_host, port=lab.adb_port)

        def run() -> None:
            try:
                for event in client.track_devices():
                    self.events.put((time.monotonic(), event))
            except Exception as exc:  # the server died: that is an event too
                self.events.put((time.monotonic(), exc))

        threading.Thread(target=run, name="test-track-devices", daemon=True).start()

    def wait_for(self, match: Callable[[object], bool], timeout: float = 5.0) -> float:
        """The arrival time of the first event that matches."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("no matching track-devices event")
            try:
                stamp, event = self.events.get(timeout=remaining)
            except queue.Empty as exc:
                raise AssertionError("no matching track-devices event") from exc
            if match(event):
                return stamp


def _is(serial: str, *statuses: str) -> Callable[[object], bool]:
    def match(event: object) -> bool:
        return (isinstance(event, adbutils.DeviceEvent) and event.serial == serial
                and event.status in statuses)
    return match


def test_unplug_is_seen_by_track_devices_within_a_second_and_plug_brings_it_back(
    sim_lab_factory: Callable[..., SimLab],
) -> None:
    lab = sim_lab_factory(2)
    serial = lab.serials[0]
    tracker = Tracker(lab)
    tracker.wait_for(_is(serial, "device"))

    started = time.monotonic()
    lab.unplug(serial)
    seen = tracker.wait_for(_is(serial, "absent", "offline"))
    assert seen - started < 1.0
    assert serial not in lab.adb_states()
    assert lab.adb_states()[lab.serials[1]] == "device"  # the other phone is untouched

    started = time.monotonic()
    lab.plug(serial)
    seen = tracker.wait_for(_is(serial, "device"))
    assert seen - started < 1.0
    client = adbutils.AdbClient(host=lab.adb_host, port=lab.adb_port)
    assert client.device(serial).shell("echo back") == "back"


def test_a_phone_dropping_its_link_shows_offline_and_replugs_at_once(
    sim_lab_factory: Callable[..., SimLab],
) -> None:
    lab = sim_lab_factory(1)
    serial = lab.serials[0]
    tracker = Tracker(lab)
    tracker.wait_for(_is(serial, "device"))
    phone = lab.phone(serial)
    started = time.monotonic()
    phone.unplug()  # the phone alone: adb keeps an offline TCP transport
    assert tracker.wait_for(_is(serial, "offline", "absent")) - started < 1.0
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", phone.port)) != 0  # nothing listens
    started = time.monotonic()
    lab.plug(serial)
    assert time.monotonic() - started < 1.0  # no wait for adb's reconnect timer
    assert lab.adb_states()[serial] == "device"


def test_unauthorized_phone_is_listed_unauthorized_and_can_be_accepted(
    sim_lab: SimLab,
) -> None:
    serial = sim_lab.serials[4]
    sim_lab.set_unauthorized(serial, True)
    assert sim_lab.adb_states()[serial] == "unauthorized"
    client = adbutils.AdbClient(host=sim_lab.adb_host, port=sim_lab.adb_port)
    assert {d.serial: d.state for d in client.list()}[serial] == "unauthorized"
    # adb itself refuses to open a transport to it (adbutils would leak its socket here).
    with pytest.raises(AdbServerError, match="unauthorized"):
        host_request(sim_lab.adb_host, sim_lab.adb_port, f"host:transport:{serial}")
    sim_lab.set_unauthorized(serial, False)
    assert sim_lab.adb_states()[serial] == "device"
    assert client.device(serial).shell("echo yes") == "yes"


def test_adb_server_kill_and_restart_bring_every_phone_back(
    sim_lab_factory: Callable[..., SimLab],
) -> None:
    lab = sim_lab_factory(3)
    tracker = Tracker(lab)
    tracker.wait_for(_is(lab.serials[0], "device"))  # connected before the crash
    port = lab.adb_port
    lab.kill_adb_server()
    tracker.wait_for(lambda event: isinstance(event, Exception))  # adbutils raises
    assert not lab.server.alive()
    with pytest.raises(OSError):
        lab.server.version()
    lab.restart_adb_server()
    assert lab.adb_port == port
    assert lab.adb_states() == {serial: "device" for serial in lab.serials}
    client = adbutils.AdbClient(host=lab.adb_host, port=port)
    assert [client.device(s).shell("echo ok") for s in lab.serials] == ["ok"] * 3


def test_reboot_takes_the_phone_away_and_brings_it_back(
    sim_lab_factory: Callable[..., SimLab],
) -> None:
    lab = sim_lab_factory(1, reboot_seconds=0.5)
    serial = lab.serials[0]
    tracker = Tracker(lab)
    tracker.wait_for(_is(serial, "device"))
    client = adbutils.AdbClient(host=lab.adb_host, port=lab.adb_port)
    device = client.device(serial)
    device.shell("am start -a android.intent.action.VIEW -d https://example.org")
    assert lab.phone(serial).running_packages != {"com.android.systemui"}
    started = time.monotonic()
    device.reboot()  # adbutils: `shell reboot`
    tracker.wait_for(_is(serial, "absent", "offline"))
    back = tracker.wait_for(_is(serial, "device"), timeout=10)
    assert 0.4 < back - started < 5.0
    assert device.shell("echo up") == "up"
    assert lab.phone(serial).running_packages == {"com.android.systemui"}
    assert lab.phone(serial).reboots == 1


def test_add_phone_registers_a_new_online_serial(sim_lab_factory: Callable[..., SimLab]) -> None:
    lab = sim_lab_factory(2)
    serial = lab.add_phone()
    assert len(lab.serials) == 3 and serial in lab.serials
    assert lab.adb_states()[serial] == "device"
    client = adbutils.AdbClient(host=lab.adb_host, port=lab.adb_port)
    assert client.device(serial).getprop("ro.serialno") == "SIM0003"


def test_stop_is_quick_and_leaves_nothing_running(sim_lab_factory: Callable[..., SimLab]) -> None:
    lab = sim_lab_factory(4)
    client = adbutils.AdbClient(host=lab.adb_host, port=lab.adb_port)
    stream = client.device(lab.serials[0]).shell("logcat", stream=True)  # busy on purpose
    ports = [phone.port for phone in lab.phones]
    loop_name = f"sim-lab:{lab.adb_port}"
    assert loop_name in {t.name for t in threading.enumerate()}
    started = time.monotonic()
    lab.stop()
    assert time.monotonic() - started < 2.0
    stream.close()
    assert not lab.server.alive()
    for port in [lab.adb_port, *ports]:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0
    assert loop_name not in {t.name for t in threading.enumerate()}


def test_reset_heals_whatever_a_test_left_behind(sim_lab: SimLab) -> None:
    sim_lab.unplug(sim_lab.serials[0])
    sim_lab.set_unauthorized(sim_lab.serials[1], True)
    sim_lab.phones[2].set_latency(5.0)
    sim_lab.kill_adb_server()
    sim_lab.reset()
    assert sim_lab.adb_states() == {serial: "device" for serial in sim_lab.serials}
    assert sim_lab.phones[2].state.latency == 0.0


def test_a_stopped_lab_starts_again_with_the_same_phones(
    sim_lab_factory: Callable[..., SimLab],
) -> None:
    lab = sim_lab_factory(2)
    serials = lab.serials
    lab.phone(serials[0]).installed_packages.add("org.kept")
    lab.stop()
    lab.start()
    assert lab.serials == serials
    assert lab.adb_states() == {serial: "device" for serial in serials}
    assert "org.kept" in lab.phone(serials[0]).installed_packages
