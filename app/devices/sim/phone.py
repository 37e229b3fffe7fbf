"""A simulated Android phone: a TCP server on 127.0.0.1 speaking adbd's protocol.

The adb server reaches it after ``adb connect 127.0.0.1:PORT``; that address
is the serial adb (and TaskDesk) sees. Unplugging drops every connection and
stops listening on the port; plugging listens on the same port again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable

from app.devices.adbserver import RESERVED_PORTS, pick_free_port
from app.devices.sim.loop import LoopThread
from app.devices.sim.profiles import PhoneProfile
from app.devices.sim.services import open_service
from app.devices.sim.state import PhoneState
from app.devices.sim.transport import Connection, ServiceFn

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
# Features adbd advertises in its banner. Only what the sim implements: no "cmd"
# (adb install would stream through `cmd package`), no sendrecv_v2, no delayed_ack.
FEATURES = ("shell_v2", "stat_v2", "fixed_push_mkdir")
PowerListener = Callable[["SimPhone", bool], None]


class SimPhone:
    """One simulated phone.

    Attributes:
        profile: what the phone claims to be.
        state: its memory (files, packages, battery, logcat...).
        reboot_seconds: how long a reboot keeps it away.
        on_power: called on the sim loop thread with ``(phone, up)`` when a
            reboot takes the phone down (``False``) and brings it back (``True``).
            Must not block: the lab hands the work to a thread.
    """

    def __init__(self, profile: PhoneProfile, *, port: int = 0, seed: int = 0,
                 loop: LoopThread | None = None, reboot_seconds: float = 2.0) -> None:
        if port in RESERVED_PORTS:
            raise ValueError(f"port {port} is reserved by adb (5037, 5554-5585)")
        self.profile = profile
        self.state = PhoneState(profile, seed=seed)
        self.reboot_seconds = reboot_seconds
        self.on_power: PowerListener | None = None
        self.reboots = 0
        self._port = port or pick_free_port()
        self._port_chosen = port == 0  # we may pick another one if it is taken before start
        self._ever_listened = False
        self._loop = loop or LoopThread(f"sim-{profile.serial_no}")
        self._owns_loop = loop is None
        self._server: asyncio.Server | None = None
        self._connections: set[Connection] = set()
        self._unauthorized = False
        self._generation = 0  # bumped by plug/unplug/stop: a pending reboot then stays down
        self._reboot_task: asyncio.Task[None] | None = None
        self.state.request_reboot = self._schedule_reboot

    # -- identity and counters ---------------------------------------------------------

    @property
    def address(self) -> str:
        return f"{HOST}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    @property
    def installed_packages(self) -> set[str]:
        return self.state.installed_packages

    @property
    def running_packages(self) -> set[str]:
        return self.state.running_packages

    @property
    def commands_run(self) -> int:
        """Shell/exec commands served (one per ``adb shell`` call or interactive line)."""
        return self.state.commands_run

    @property
    def listening(self) -> bool:
        return self._server is not None

    @property
    def unauthorized(self) -> bool:
        return self._unauthorized

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    # -- control (from any thread but the sim loop) ------------------------------------

    def start(self) -> None:
        """Start listening (and the phone's own loop if it has no shared one)."""
        self._loop.start()
        for attempt in range(5):
            try:
                self._loop.run(self._listen())
                return
            except OSError:
                # Someone took our port between picking and listening. Before the
                # first listen nobody knows the address yet, so another one will do.
                if self._ever_listened or not self._port_chosen or attempt == 4:
                    raise
                self._port = pick_free_port()

    def stop(self) -> None:
        """Stop listening, drop connections, cancel a pending reboot."""
        if self._loop.running:
            self._loop.run(self._power_off(cancel_reboot=True))
        if self._owns_loop:
            self._loop.stop()

    def unplug(self) -> None:
        """Drop every connection and stop listening (the cable is pulled)."""
        self._loop.run(self._power_off(cancel_reboot=True))

    def plug(self) -> None:
        """Listen again on the same port (the lab then adb-connects it)."""
        self._loop.run(self._listen())

    def reboot(self) -> None:
        """Reboot as ``adb reboot`` does: away for ``reboot_seconds``, then back."""
        self._loop.loop.call_soon_threadsafe(self._schedule_reboot)

    def set_unauthorized(self, flag: bool) -> None:
        """Refuse (``True``) or accept (``False``) the host's RSA key.

        Refusing drops current connections (the host must re-handshake and is
        then listed ``unauthorized``); accepting completes any pending handshake.
        """
        self._loop.run(self._set_unauthorized(flag))

    def set_latency(self, seconds: float) -> None:
        self.state.latency = max(0.0, seconds)

    def set_failure_rate(self, p: float) -> None:
        self.state.failure_rate = min(1.0, max(0.0, p))

    def set_battery(self, level: int | None = None, temperature_c: float | None = None,
                    charging: bool | None = None) -> None:
        self.state.battery.set(level, temperature_c, charging)

    # -- DeviceSide (called on the sim loop) -------------------------------------------

    def banner(self) -> bytes:
        props = self.state.props
        return (
            f"device::ro.product.name={props['ro.product.name']};"
            f"ro.product.model={props['ro.product.model']};"
            f"ro.product.device={props['ro.product.device']};"
            f"features={','.join(FEATURES)}"
        ).encode()

    def authorized(self) -> bool:
        return not self._unauthorized

    def open_service(self, name: str) -> ServiceFn | None:
        return open_service(self.state, name)

    # -- loop side ---------------------------------------------------------------------

    async def _listen(self) -> None:
        self._generation += 1
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._on_client, HOST, self._port, reuse_address=True
        )
        self._ever_listened = True

    async def _power_off(self, *, cancel_reboot: bool) -> None:
        if cancel_reboot:
            self._generation += 1
            task, self._reboot_task = self._reboot_task, None
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for conn in list(self._connections):
            conn.drop()
        self._connections.clear()
        if server is not None:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def _set_unauthorized(self, flag: bool) -> None:
        self._unauthorized = flag
        for conn in list(self._connections):
            if flag:
                conn.drop()
                self._connections.discard(conn)
            else:
                conn.authorize()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # Small request/response messages: never wait for Nagle.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(self, reader, writer)
        self._connections.add(conn)
        try:
            await conn.serve()
        finally:
            self._connections.discard(conn)

    def _schedule_reboot(self) -> None:
        if self._reboot_task is not None and not self._reboot_task.done():
            return
        self._reboot_task = asyncio.get_running_loop().create_task(self._reboot())

    async def _reboot(self) -> None:
        # Let the reply to `reboot` leave before the link goes down.
        await asyncio.sleep(0.05)
        if self._server is None:
            return  # unplugged: nothing to reboot
        self.state.log.add("I", "ShutdownThread", "Rebooting, reason: adb")
        await self._power_off(cancel_reboot=False)
        generation = self._generation
        self._notify_power(False)
        await asyncio.sleep(self.reboot_seconds)
        if generation != self._generation:
            return  # unplugged or stopped meanwhile: stay down
        state = self.state
        state.running_packages.clear()
        state.running_packages.add("com.android.systemui")
        state.foreground = None
        state.boot_time = time.time()
        state.log.add("I", "SystemServer", "Boot completed after reboot")
        await self._listen()
        self.reboots += 1
        self._notify_power(True)

    def _notify_power(self, up: bool) -> None:
        if self.on_power is not None:
            try:
                self.on_power(self, up)
            except Exception:
                log.exception("sim: power listener failed for %s", self.address)
