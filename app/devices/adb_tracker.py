"""Push-based device discovery: ``host:track-devices`` in a thread.

The adb server answers ``track-devices`` with the full device list at once and
again after every change, so the first block after each (re)connect is the full
re-sync, taken atomically with the subscription (no window between "list" and
"subscribe" in which a change could be missed). Every difference from what we
knew becomes an event, including ``ABSENT`` for serials that vanished while we
were disconnected.

When the server dies every known device is reported ``OFFLINE`` (it cannot be
reached; its metadata is dropped) and the tracker reconnects with capped
exponential backoff and jitter. Devices that come online are probed in a small
pool so a slow phone never delays events for the others; their ``ONLINE`` event
carries the probed metadata. All listener calls come, in order, from one
``adb-events`` thread.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from adbutils import AdbConnection, AdbError

from app.core.backoff import retry_delay
from app.core.enums import DeviceState
from app.devices.adb_client import SafeAdbClient
from app.devices.adb_parse import classify_transport, parse_device_list
from app.devices.base import DeviceError, DeviceInfo, DeviceListener, ServerInfo

log = logging.getLogger(__name__)

PROBE_WORKERS = 4

Probe = Callable[[str], DeviceInfo]


@dataclass
class _Entry:
    state: DeviceState
    generation: int
    info: DeviceInfo


class DeviceTracker:
    """Owns the tracking thread, the probe pool and the event thread."""

    def __init__(
        self,
        client: SafeAdbClient,
        probe: Probe,
        listener: DeviceListener,
        *,
        backoff: tuple[float, float],
        on_leave_online: Callable[[str], None],
    ) -> None:
        self._client = client
        self._probe = probe
        self._listener = listener
        self._backoff_base, self._backoff_cap = backoff
        self._on_leave_online = on_leave_online
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._transports: dict[str, str] = {}  # last known, so a tile keeps "sim" offline
        self._generation = 0
        self._alive: bool | None = None
        self._failures = 0  # consecutive failed connects (tracking thread only)
        self._conn: AdbConnection | None = None
        self._stopping = threading.Event()
        self._events: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._pool = ThreadPoolExecutor(PROBE_WORKERS, thread_name_prefix="adb-probe")
        self._thread = threading.Thread(target=self._track_forever, name="adb-track",
                                        daemon=True)
        self._event_thread = threading.Thread(target=self._deliver_events, name="adb-events",
                                              daemon=True)

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        self._event_thread.start()
        self._thread.start()

    def stop(self) -> None:
        """End tracking promptly: close the tracking socket, join both threads."""
        self._stopping.set()
        with self._lock:
            conn = self._conn
        if conn is not None:
            _shutdown(conn)
        self._thread.join()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._events.put(None)
        self._event_thread.join()

    # --- queries -------------------------------------------------------------------

    def devices(self) -> list[DeviceInfo]:
        with self._lock:
            return [e.info for e in self._entries.values() if e.state != DeviceState.ABSENT]

    def server_alive(self) -> bool | None:
        with self._lock:
            return self._alive

    # --- the tracking loop -----------------------------------------------------------

    def _track_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                self._track_once()
            except (DeviceError, AdbError, OSError, ValueError) as exc:
                if self._stopping.is_set():
                    break
                if self._server_answers():
                    log.info("device tracking connection ended (%s); reconnecting", exc)
                    self._failures = 0
                    self._stopping.wait(0.1)
                    continue
                self._failures += 1
                where = f"adb server {self._client.host}:{self._client.port}"
                self._server_down(str(exc) if where in str(exc) else f"{where} lost: {exc}")
                delay = retry_delay(self._failures, base=self._backoff_base, factor=2.0,
                                    cap=self._backoff_cap, jitter=0.2)
                self._stopping.wait(delay)

    def _track_once(self) -> None:
        """Subscribe and apply every block until the connection ends (always raises)."""
        conn = self._client.connect_server()
        with self._lock:
            self._conn = conn
        try:
            if self._stopping.is_set():
                return
            conn.send_command("host:track-devices")
            conn.check_okay()
            conn.conn.settimeout(None)  # blocks until a change; stop() shuts the socket
            first = True
            while not self._stopping.is_set():
                block = conn.read_string_block()
                if first:
                    first = False
                    self._failures = 0  # a later crash starts backing off from scratch
                    self._server_up()
                self._apply(parse_device_list(block))
            return
        finally:
            with self._lock:
                self._conn = None
            conn.close()

    def _server_answers(self) -> bool:
        try:
            self._client.host_query("host:version", timeout=1.0)
        except (DeviceError, AdbError, OSError, ValueError):
            return False
        return True

    def _server_up(self) -> None:
        version: int | None = None
        try:
            version = int(self._client.host_query("host:version"), 16)
        except (DeviceError, AdbError, OSError, ValueError) as exc:
            log.debug("host:version failed right after connecting: %s", exc)
        with self._lock:
            if self._alive is True:
                return
            self._alive = True
            info = ServerInfo(self._client.host, self._client.port, True, version)
            self._events.put(lambda: self._listener.server_state_changed(info))

    def _server_down(self, message: str) -> None:
        with self._lock:
            if self._alive is not False:
                self._alive = False
                info = ServerInfo(self._client.host, self._client.port, False, message=message)
                self._events.put(lambda: self._listener.server_state_changed(info))
            # Nothing is reachable without a server. The re-sync after reconnecting
            # reports which devices came back (ONLINE) and which did not (ABSENT).
            for serial, entry in list(self._entries.items()):
                if entry.state in (DeviceState.ONLINE, DeviceState.UNAUTHORIZED):
                    self._set_state_locked(serial, DeviceState.OFFLINE)

    # --- state changes ---------------------------------------------------------------

    def _apply(self, listed: dict[str, DeviceState]) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            for serial in list(self._entries) + [s for s in listed if s not in self._entries]:
                new_state = listed.get(serial, DeviceState.ABSENT)
                entry = self._entries.get(serial)
                if entry is None and new_state == DeviceState.ABSENT:
                    continue
                if entry is not None and entry.state == new_state:
                    continue
                self._set_state_locked(serial, new_state)

    def _set_state_locked(self, serial: str, state: DeviceState) -> None:
        """Record a state change and schedule its event (caller holds the lock)."""
        previous = self._entries.get(serial)
        self._generation += 1
        generation = self._generation
        transport = self._transports.get(serial) or classify_transport(serial, {})
        bare = DeviceInfo(serial=serial, state=state, transport=transport)
        if previous is not None and previous.state == DeviceState.ONLINE:
            self._on_leave_online(serial)
        if state == DeviceState.ABSENT:
            self._entries.pop(serial, None)
        else:
            self._entries[serial] = _Entry(state, generation, bare)
        if state == DeviceState.ONLINE:
            # The ONLINE event waits for the probe so listeners get the metadata.
            self._pool.submit(self._probe_and_publish, serial, generation)
        else:
            self._events.put(lambda: self._listener.device_changed(bare))

    def _probe_and_publish(self, serial: str, generation: int) -> None:
        info: DeviceInfo
        try:
            info = replace(self._probe(serial), serial=serial, state=DeviceState.ONLINE)
        except DeviceError as exc:
            log.warning("%s: metadata probe failed: %s", serial, exc)
            with self._lock:
                entry = self._entries.get(serial)
                info = entry.info if entry is not None else DeviceInfo(
                    serial, DeviceState.ONLINE, classify_transport(serial, {}))
        except Exception:  # a probe bug must not lose the ONLINE event
            log.exception("%s: metadata probe crashed", serial)
            info = DeviceInfo(serial, DeviceState.ONLINE, classify_transport(serial, {}))
        with self._lock:
            entry = self._entries.get(serial)
            if self._stopping.is_set() or entry is None or entry.generation != generation:
                return  # the device moved on while we probed; a newer event rules
            entry.info = info
            self._transports[serial] = info.transport
            self._events.put(lambda: self._listener.device_changed(info))

    def _deliver_events(self) -> None:
        while True:
            call = self._events.get()
            if call is None:
                return
            try:
                call()
            except Exception:  # a listener bug must not stop discovery
                log.exception("device listener failed")


def _shutdown(conn: AdbConnection) -> None:
    """Unblock a recv() in another thread (close() alone does not on Linux)."""
    with contextlib.suppress(OSError, AdbError):
        conn.conn.shutdown(socket.SHUT_RDWR)
