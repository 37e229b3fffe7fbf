"""AdbProvider discovery: track-devices, metadata probing, unplug/replug, server crashes.

Runs against the shared 12-phone lab (reset to healthy before each test) and,
where a test needs special settings, a private lab.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from app.core.enums import DeviceState
from app.devices.adb import AdbProvider
from app.devices.adbserver import pick_server_port
from app.devices.base import DeviceGoneError, DeviceInfo, ServerInfo
from app.devices.sim import SimLab

pytest_plugins = ("tests.devices.simfixtures",)

T = TypeVar("T")
FAST_BACKOFF = (0.05, 0.3)


class Recorder:
    """A DeviceListener that keeps every event with its arrival time."""

    def __init__(self) -> None:
        self.devices: list[tuple[float, DeviceInfo]] = []
        self.servers: list[tuple[float, ServerInfo]] = []
        self.threads: set[str] = set()
        self._cond = threading.Condition()

    def device_changed(self, info: DeviceInfo) -> None:
        with self._cond:
            self.devices.append((time.monotonic(), info))
            self.threads.add(threading.current_thread().name)
            self._cond.notify_all()

    def server_state_changed(self, info: ServerInfo) -> None:
        with self._cond:
            self.servers.append((time.monotonic(), info))
            self._cond.notify_all()

    def latest(self) -> dict[str, DeviceInfo]:
        with self._cond:
            return {info.serial: info for _, info in self.devices}

    def events_for(self, serial: str) -> list[DeviceInfo]:
        with self._cond:
            return [info for _, info in self.devices if info.serial == serial]

    def wait(self, predicate: Callable[[], T], timeout: float, what: str) -> T:
        """Wait until ``predicate()`` is truthy; return its value."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; events: "
                                         f"{[i for _, i in self.devices][-6:]} "
                                         f"servers: {[i for _, i in self.servers]}")
                self._cond.wait(left)

    def wait_state(self, serials: list[str], states: set[DeviceState], timeout: float) -> None:
        def reached() -> bool:
            latest = {info.serial: info for _, info in self.devices}
            return all(s in latest and latest[s].state in states for s in serials)

        self.wait(reached, timeout, f"{serials} -> {states}")


@pytest.fixture
def tracked(sim_lab: SimLab) -> Iterator[tuple[SimLab, AdbProvider, Recorder]]:
    provider = AdbProvider(sim_lab.adb_host, sim_lab.adb_port, resync_backoff=FAST_BACKOFF)
    recorder = Recorder()
    provider.start(recorder)
    recorder.wait_state(sim_lab.serials, {DeviceState.ONLINE}, 10)
    yield sim_lab, provider, recorder
    provider.stop()


def assert_matches_profile(lab: SimLab, info: DeviceInfo) -> None:
    profile = lab.phone(info.serial).profile
    assert info.state == DeviceState.ONLINE
    assert info.transport == "sim"
    assert (info.model, info.manufacturer) == (profile.model, profile.manufacturer)
    assert (info.android_version, info.sdk, info.abi) == (
        profile.android_version, profile.sdk, profile.abi)


def test_tracking_reports_every_phone_online_with_metadata_probed_once(
        sim_lab: SimLab) -> None:
    commands_before = {s: sim_lab.phone(s).commands_run for s in sim_lab.serials}
    provider = AdbProvider(sim_lab.adb_host, sim_lab.adb_port)
    recorder = Recorder()
    started = time.monotonic()
    provider.start(recorder)
    provider.start(recorder)  # idempotent
    try:
        recorder.wait_state(sim_lab.serials, {DeviceState.ONLINE}, 10)
        elapsed = time.monotonic() - started
        assert len(sim_lab.serials) == 12
        for serial in sim_lab.serials:
            # One event per phone, already carrying the probed metadata.
            (info,) = recorder.events_for(serial)
            assert_matches_profile(sim_lab, info)
            # Probing costs exactly one shell command (getprop) per connection.
            assert sim_lab.phone(serial).commands_run - commands_before[serial] == 1
        assert {d.serial: d for d in provider.devices()} == recorder.latest()
        (_, server), = recorder.servers
        assert server.alive and server.version == 41
        assert recorder.threads == {"adb-events"}
        assert elapsed < 3.0
    finally:
        provider.stop()


def test_unplug_is_reported_within_a_second_and_replug_probes_again(
        tracked: tuple[SimLab, AdbProvider, Recorder]) -> None:
    lab, provider, recorder = tracked
    serial = lab.serials[3]
    props = lab.phone(serial).state.props
    original_model = props["ro.product.model"]
    try:
        unplugged_at = time.monotonic()
        lab.unplug(serial)
        recorder.wait_state([serial], {DeviceState.ABSENT, DeviceState.OFFLINE}, 1.0)
        gone_at = next(t for t, i in recorder.devices
                       if i.serial == serial and i.state != DeviceState.ONLINE)
        assert gone_at - unplugged_at < 1.0
        assert serial not in {d.serial for d in provider.devices()
                              if d.state == DeviceState.ONLINE}

        # A changed property proves the next connection is probed afresh.
        props["ro.product.model"] = "Replugged Model"
        lab.plug(serial)
        recorder.wait_state([serial], {DeviceState.ONLINE}, 5)
        back = recorder.latest()[serial]
        assert back.model == "Replugged Model"
        assert back.transport == "sim" and back.sdk == lab.phone(serial).profile.sdk
    finally:
        props["ro.product.model"] = original_model


def test_unauthorized_phone_is_reported_then_online_when_accepted(
        tracked: tuple[SimLab, AdbProvider, Recorder]) -> None:
    lab, _, recorder = tracked
    serial = lab.serials[5]
    lab.set_unauthorized(serial, True)
    recorder.wait_state([serial], {DeviceState.UNAUTHORIZED}, 5)
    assert recorder.latest()[serial].model == ""  # no metadata without authorisation
    lab.set_unauthorized(serial, False)
    recorder.wait_state([serial], {DeviceState.ONLINE}, 5)
    assert_matches_profile(lab, recorder.latest()[serial])


def test_server_crash_is_reported_and_restart_resyncs_every_phone(
        tracked: tuple[SimLab, AdbProvider, Recorder]) -> None:
    lab, provider, recorder = tracked
    lab.kill_adb_server()
    recorder.wait(lambda: any(not s.alive for _, s in recorder.servers), 3, "server down")
    recorder.wait_state(lab.serials, {DeviceState.OFFLINE}, 1)
    assert not [d for d in provider.devices() if d.state == DeviceState.ONLINE]
    assert provider.server_info().alive is False
    with pytest.raises(DeviceGoneError):
        provider.shell(lab.serials[0], "echo hi", timeout=5)

    down_events = len(recorder.servers)
    lab.restart_adb_server()
    recorder.wait(lambda: len(recorder.servers) > down_events and recorder.servers[-1][1].alive,
                  5, "server back")
    recorder.wait_state(lab.serials, {DeviceState.ONLINE}, 10)
    for serial in lab.serials:
        assert_matches_profile(lab, recorder.latest()[serial])
    assert len([d for d in provider.devices() if d.state == DeviceState.ONLINE]) == 12
    assert provider.shell(lab.serials[0], "echo back", timeout=5).output == "back\n"


def test_phone_that_vanished_while_the_server_was_down_is_reported_absent(
        tracked: tuple[SimLab, AdbProvider, Recorder]) -> None:
    lab, _, recorder = tracked
    lost = lab.serials[7]
    lab.kill_adb_server()
    recorder.wait(lambda: any(not s.alive for _, s in recorder.servers), 3, "server down")
    lab.phone(lost).unplug()
    lab.restart_adb_server()
    others = [s for s in lab.serials if s != lost]
    recorder.wait_state(others, {DeviceState.ONLINE}, 10)
    recorder.wait_state([lost], {DeviceState.ABSENT}, 5)


def test_device_unplugged_mid_command_raises_device_gone(
        tracked: tuple[SimLab, AdbProvider, Recorder]) -> None:
    lab, provider, _ = tracked
    serial = lab.serials[9]
    threading.Timer(0.3, lab.phone(serial).unplug).start()
    started = time.monotonic()
    with pytest.raises(DeviceGoneError):
        provider.shell(serial, "sleep 30", timeout=60)
    assert time.monotonic() - started < 1.5


def test_a_failing_listener_does_not_stop_discovery(sim_lab: SimLab) -> None:
    class Grumpy(Recorder):
        def device_changed(self, info: DeviceInfo) -> None:
            super().device_changed(info)
            raise RuntimeError("listener bug")

    provider = AdbProvider(sim_lab.adb_host, sim_lab.adb_port)
    recorder = Grumpy()
    provider.start(recorder)
    try:
        recorder.wait_state(sim_lab.serials, {DeviceState.ONLINE}, 10)
        sim_lab.unplug(sim_lab.serials[0])
        recorder.wait_state(sim_lab.serials[:1], {DeviceState.ABSENT, DeviceState.OFFLINE}, 2)
    finally:
        provider.stop()


def test_stop_is_prompt_and_silences_events(sim_lab: SimLab) -> None:
    provider = AdbProvider(sim_lab.adb_host, sim_lab.adb_port)
    recorder = Recorder()
    provider.start(recorder)
    recorder.wait_state(sim_lab.serials, {DeviceState.ONLINE}, 10)
    started = time.monotonic()
    provider.stop()
    assert time.monotonic() - started < 0.5
    assert not {t.name for t in threading.enumerate()} & {"adb-track", "adb-events"}
    count = len(recorder.devices)
    sim_lab.unplug(sim_lab.serials[1])
    time.sleep(0.3)
    assert len(recorder.devices) == count
    provider.stop()  # a second stop is harmless


def test_server_absent_at_start_then_appearing(
        sim_lab_factory: Callable[..., SimLab]) -> None:
    port = pick_server_port()
    provider = AdbProvider("127.0.0.1", port, resync_backoff=FAST_BACKOFF)
    recorder = Recorder()
    provider.start(recorder)
    try:
        recorder.wait(lambda: recorder.servers, 3, "first server report")
        assert recorder.servers[0][1].alive is False
        assert "127.0.0.1" in recorder.servers[0][1].message
        lab = sim_lab_factory(3, adb_port=port)
        recorder.wait(lambda: recorder.servers[-1][1].alive, 5, "server up")
        recorder.wait_state(lab.serials, {DeviceState.ONLINE}, 5)
        for serial in lab.serials:
            assert_matches_profile(lab, recorder.latest()[serial])
        # Backoff is capped: retries kept coming while the server was away.
        assert sum(1 for _, s in recorder.servers if not s.alive) == 1
    finally:
        provider.stop()


def test_reboot_takes_the_phone_away_and_it_comes_back(
        sim_lab_factory: Callable[..., SimLab]) -> None:
    lab = sim_lab_factory(2, reboot_seconds=0.3)
    provider = AdbProvider(lab.adb_host, lab.adb_port)
    recorder = Recorder()
    provider.start(recorder)
    try:
        serial = lab.serials[0]
        recorder.wait_state(lab.serials, {DeviceState.ONLINE}, 5)
        provider.reboot(serial)
        recorder.wait(lambda: any(i.state != DeviceState.ONLINE
                                  for i in recorder.events_for(serial)), 3, "reboot down")
        recorder.wait_state([serial], {DeviceState.ONLINE}, 5)
        assert lab.phone(serial).reboots == 1
        assert_matches_profile(lab, recorder.latest()[serial])
    finally:
        provider.stop()


def test_a_slow_phone_does_not_delay_the_others(sim_lab: SimLab) -> None:
    slow = sim_lab.serials[0]
    sim_lab.phone(slow).set_latency(2.0)  # its getprop answers after 2.0 s
    provider = AdbProvider(sim_lab.adb_host, sim_lab.adb_port)
    recorder = Recorder()
    started = time.monotonic()
    provider.start(recorder)
    try:
        others = sim_lab.serials[1:]
        recorder.wait_state(others, {DeviceState.ONLINE}, 1.5)
        assert slow not in recorder.latest()
        # Unplug news is not stuck behind the slow probe either.
        sim_lab.unplug(others[0])
        recorder.wait_state(others[:1], {DeviceState.ABSENT, DeviceState.OFFLINE}, 1.0)
        assert slow not in recorder.latest()
        recorder.wait_state([slow], {DeviceState.ONLINE}, 5)
        assert time.monotonic() - started >= 2.0
        assert_matches_profile(sim_lab, recorder.latest()[slow])
    finally:
        provider.stop()


def test_reconnect_attempts_back_off_exponentially_up_to_the_cap() -> None:
    """A port that accepts and hangs up at once looks like a dying server: the
    provider must retry ever more slowly (capped), not spin."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    accepted: list[float] = []
    running = threading.Event()
    running.set()

    def accept_and_hang_up() -> None:
        while running.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(time.monotonic())
            conn.close()

    acceptor = threading.Thread(target=accept_and_hang_up)
    acceptor.start()
    provider = AdbProvider("127.0.0.1", port, resync_backoff=(0.1, 0.4))
    recorder = Recorder()
    try:
        provider.start(recorder)
        time.sleep(1.6)
    finally:
        provider.stop()
        running.clear()
        acceptor.join()
        listener.close()
    # Each attempt is a subscribe plus a liveness probe; group them into attempts.
    attempts = [t for i, t in enumerate(accepted) if i == 0 or t - accepted[i - 1] > 0.05]
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    # 0.1, 0.2, 0.4, 0.4, ... (±20 %) fits 5-6 attempts into 1.6 s; a spin makes hundreds.
    assert 4 <= len(attempts) <= 8, gaps
    assert gaps[0] < 0.2 and all(0.3 < g < 0.55 for g in gaps[2:]), gaps
    assert [s.alive for _, s in recorder.servers] == [False]


def test_backoff_starts_over_after_each_recovery(sim_lab: SimLab) -> None:
    """A long outage grows the delay; once the server is back, the next crash is
    retried quickly again (the failure count is not carried over)."""
    provider = AdbProvider(sim_lab.adb_host, sim_lab.adb_port, resync_backoff=(0.05, 5.0))
    recorder = Recorder()
    provider.start(recorder)
    try:
        recorder.wait_state(sim_lab.serials, {DeviceState.ONLINE}, 10)
        for outage in (1.2, 0.0):
            sim_lab.kill_adb_server()
            recorder.wait(lambda: not recorder.servers[-1][1].alive, 3, "server down")
            time.sleep(outage)  # 1.2 s of failures: the next delay would be ~1.6 s
            count = len(recorder.servers)
            sim_lab.restart_adb_server()
            back_at = time.monotonic()
            recorder.wait(lambda: len(recorder.servers) > count, 5, "server back")  # noqa: B023
            reconnect = recorder.servers[-1][0] - back_at
        # The second, short outage is noticed within the first small delays.
        assert reconnect < 0.8
    finally:
        provider.stop()
