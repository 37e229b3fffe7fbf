"""A simulated phone lab: N phones behind a private, real adb server.

``SimLab.start()`` starts one sim loop thread, the phones (each listening on
its own loopback port), a private adb server, and ``adb connect``s every
phone; it returns when adb lists them all as ``device``. Unplug, plug,
unauthorise, reboot and adb-server crashes are driven from here and each call
returns once adb has noticed.

Unplug mirrors USB rather than Wi-Fi adb: the phone drops its links and stops
listening, and the lab ``adb disconnect``s it, so it leaves adb's list instead
of lingering as an ``offline`` TCP device that adb keeps re-dialling.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

from app.devices.adbserver import AdbServerError, PrivateAdbServer
from app.devices.sim.loop import LoopThread
from app.devices.sim.phone import SimPhone
from app.devices.sim.profiles import PhoneProfile, lab_profiles, make_profile

log = logging.getLogger(__name__)

ABSENT = "absent"


class SimLab:
    """A lab of simulated phones registered with a private adb server."""

    def __init__(self, n_phones: int = 12, workdir: Path | None = None, *, latency: float = 0.0,
                 failure_rate: float = 0.0, seed: int = 0, adb_port: int | None = None,
                 reboot_seconds: float = 2.0, state_timeout: float = 10.0) -> None:
        self._n_phones = n_phones
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(
            tempfile.mkdtemp(prefix="taskdesk-simlab-")
        )
        self.latency = latency
        self.failure_rate = failure_rate
        self.seed = seed
        self.reboot_seconds = reboot_seconds
        self.state_timeout = state_timeout
        self.server = PrivateAdbServer(self.workdir / "adb-home", port=adb_port)
        self._loop = LoopThread(f"sim-lab:{self.server.port}")
        self._phones: dict[str, SimPhone] = {}
        self._lock = threading.RLock()
        self._started = False

    # -- lifecycle -----------------------------------------------------------------

    @property
    def adb_host(self) -> str:
        return self.server.host

    @property
    def adb_port(self) -> int:
        return self.server.port

    def start(self) -> None:
        """Start phones and adb server; returns when adb lists every phone as ``device``."""
        with self._lock:
            if self._started:
                return
            self._started = True
            try:
                self._loop.start()
                if self._phones:  # started again after stop(): the same phones come back
                    for phone in self._phones.values():
                        phone.start()
                else:
                    for profile in lab_profiles(self._n_phones, self.seed):
                        self._new_phone(profile)
                self.server.start()
                for phone in self._phones.values():
                    self._connect(phone)
                try:
                    self.wait_for_states({a: "device" for a in self._phones}, timeout=2.0)
                except TimeoutError:
                    for phone in self._phones.values():
                        self._bring_online(phone)
            except BaseException:
                self.stop()
                raise

    def stop(self) -> None:
        """Stop the adb server and every phone (idempotent, quick)."""
        with self._lock:
            self.server.stop()
            for phone in self._phones.values():
                phone.stop()
            self._loop.stop()
            self._started = False
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> SimLab:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- phones --------------------------------------------------------------------

    @property
    def serials(self) -> list[str]:
        """The adb serials (``127.0.0.1:PORT``) of every phone, plugged or not."""
        with self._lock:
            return list(self._phones)

    @property
    def phones(self) -> list[SimPhone]:
        with self._lock:
            return list(self._phones.values())

    def phone(self, serial: str) -> SimPhone:
        """The phone with this adb serial (or ``ro.serialno`` such as ``SIM0003``)."""
        with self._lock:
            if serial in self._phones:
                return self._phones[serial]
            for phone in self._phones.values():
                if phone.profile.serial_no == serial:
                    return phone
        raise KeyError(f"no simulated phone {serial!r}")

    def add_phone(self, profile: PhoneProfile | None = None) -> str:
        """Add (and plug in) one more phone; returns its adb serial."""
        with self._lock:
            if profile is None:
                profile = make_profile(len(self._phones) + 1)
                profile.serial_no = self._unique_serial_no(len(self._phones) + 1)
            phone = self._new_phone(profile)
            self._bring_online(phone)
            return phone.address

    def plug(self, serial: str) -> None:
        """Plug a phone in: it listens again, is adb-connected, and is listed online."""
        phone = self.phone(serial)
        phone.plug()
        self._bring_online(phone)

    def unplug(self, serial: str) -> None:
        """Pull the cable: returns once adb no longer lists the phone."""
        phone = self.phone(serial)
        phone.unplug()
        self._disconnect(phone.address)
        self.wait_for_states({phone.address: ABSENT})

    def set_unauthorized(self, serial: str, flag: bool) -> None:
        """Revoke (``True``) or grant (``False``) this host's key on the phone.

        Returns once adb lists the phone as ``unauthorized`` / ``device``.
        """
        phone = self.phone(serial)
        phone.set_unauthorized(flag)
        if not phone.listening:
            return
        if not flag:
            # Accepting the key completes a pending handshake: adb sees "device" at once.
            try:
                self.wait_for_states({phone.address: "device"}, timeout=1.0)
                return
            except TimeoutError:
                pass  # adb had given up on the phone: connect afresh below
        # A fresh handshake shows adb the phone's new answer.
        self._bring_online(phone, fresh=True)

    def reboot(self, serial: str, wait: bool = True) -> None:
        """Reboot a phone; with ``wait``, return once it is back online."""
        phone = self.phone(serial)
        before = phone.reboots
        phone.reboot()
        if wait:
            deadline = time.monotonic() + phone.reboot_seconds + self.state_timeout
            while phone.reboots == before and time.monotonic() < deadline:
                time.sleep(0.02)
            self.wait_for_states({phone.address: self._expected(phone)})

    def reset(self) -> None:
        """Undo what tests and demos did: every phone plugged in, authorised, with the
        lab's latency and failure rate and its preinstalled apps, and the adb server
        running and listing them all."""
        with self._lock:
            for phone in self._phones.values():
                phone.set_latency(self.latency)
                phone.set_failure_rate(self.failure_rate)
                phone.state.restore_preinstalled_apps()
                if phone.unauthorized:
                    phone.set_unauthorized(False)
                if not phone.listening:
                    phone.plug()
            if not self.server.alive():
                self.server.start()
            states = self.adb_states()
            for address, phone in self._phones.items():
                if states.get(address) != "device":
                    self._bring_online(phone)

    # -- the adb server ------------------------------------------------------------

    def kill_adb_server(self) -> None:
        """SIGKILL the adb server (a crash); phones stay plugged in."""
        self.server.kill()

    def restart_adb_server(self) -> None:
        """Start the adb server again and re-connect every plugged phone."""
        with self._lock:
            if self.server.alive():
                self.server.stop()
            self.server.start()
            plugged = [p for p in self._phones.values() if p.listening]
            for phone in plugged:
                self._connect(phone)
            try:
                self.wait_for_states({p.address: self._expected(p) for p in plugged},
                                     timeout=2.0)
            except TimeoutError:
                for phone in plugged:
                    self._bring_online(phone)

    def adb_states(self) -> dict[str, str]:
        """What the adb server lists right now: serial -> state."""
        return dict(self.server.devices())

    def wait_for_states(self, wanted: dict[str, str], timeout: float | None = None) -> None:
        """Poll adb until each serial has its wanted state (``"absent"``: not listed).

        Raises:
            TimeoutError: some phone did not get there in time.
        """
        deadline = time.monotonic() + (timeout if timeout is not None else self.state_timeout)
        current: dict[str, str] = {}
        while True:
            try:
                current = self.adb_states()
            except (OSError, AdbServerError):
                current = {}
            if all(current.get(s, ABSENT) == state for s, state in wanted.items()):
                return
            if time.monotonic() > deadline:
                missing = {s: current.get(s, ABSENT) for s, st in wanted.items()
                           if current.get(s, ABSENT) != st}
                raise TimeoutError(f"adb states {missing} never became {wanted}")
            time.sleep(0.02)

    # -- internals -----------------------------------------------------------------

    def _new_phone(self, profile: PhoneProfile) -> SimPhone:
        phone = SimPhone(profile, seed=self.seed, loop=self._loop,
                         reboot_seconds=self.reboot_seconds)
        phone.set_latency(self.latency)
        phone.set_failure_rate(self.failure_rate)
        phone.on_power = self._on_power
        phone.start()
        self._phones[phone.address] = phone
        return phone

    def _unique_serial_no(self, index: int) -> str:
        taken = {p.profile.serial_no for p in self._phones.values()}
        while f"SIM{index:04d}" in taken:
            index += 1
        return f"SIM{index:04d}"

    @staticmethod
    def _expected(phone: SimPhone) -> str:
        return "unauthorized" if phone.unauthorized else "device"

    def _bring_online(self, phone: SimPhone, *, fresh: bool = False) -> None:
        """``adb connect`` a listening phone until adb lists it in its expected state.

        adb keeps a dropped TCP phone as an ``offline`` transport that it re-dials
        only every few seconds, and answers ``connect`` with "already connected";
        and a ``disconnect`` completes asynchronously. So: drop a stale transport,
        wait until it is gone, connect, and try again if adb loses the race.
        """
        address = phone.address
        deadline = time.monotonic() + self.state_timeout
        while True:
            listed = self.adb_states().get(address, ABSENT)
            if listed == self._expected(phone) and not fresh:
                return
            if listed != ABSENT:
                self._disconnect(address)
                with contextlib.suppress(TimeoutError):
                    self.wait_for_states({address: ABSENT}, timeout=2.0)
            fresh = False
            self._connect(phone)
            try:
                self.wait_for_states({address: self._expected(phone)},
                                     timeout=min(2.0, max(0.1, deadline - time.monotonic())))
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
                log.debug("sim: %s not online yet after connect; retrying", address)

    def _connect(self, phone: SimPhone) -> None:
        try:
            self.server.connect(phone.address)
        except AdbServerError as exc:
            # An unauthorised phone fails the handshake but stays listed: that is fine.
            if not phone.unauthorized:
                raise
            log.debug("sim: connect %s: %s", phone.address, exc)

    def _disconnect(self, address: str) -> None:
        try:
            self.server.disconnect(address)
        except (OSError, AdbServerError) as exc:
            log.debug("sim: disconnect %s: %s", address, exc)

    def _on_power(self, phone: SimPhone, up: bool) -> None:
        """A reboot took a phone down or brought it back (called on the sim loop)."""

        def follow() -> None:
            try:
                if up:
                    self._bring_online(phone)
                else:
                    self._disconnect(phone.address)
            except (OSError, AdbServerError, TimeoutError) as exc:
                log.info("sim: could not follow reboot of %s: %s", phone.address, exc)

        threading.Thread(target=follow, name="sim-reboot-follow", daemon=True).start()
