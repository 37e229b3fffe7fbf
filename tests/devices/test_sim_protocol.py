"""The adb device transport as a host sees it, on the wire, without an adb server.

Protects the protocol details adb relies on and that a friendly client would
not notice: version and max-payload negotiation, checksums for old hosts, one
WRTE in flight per stream until OKAY, CLSE stopping a service at once, the
AUTH exchange of an unauthorised phone, and garbage dropping the link.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import pytest

from app.devices.sim import SimPhone, make_profile
from app.devices.sim import protocol as p

HOST_BANNER = b"host::features=shell_v2,cmd,stat_v2"


class RawHost:
    """The host side of the device protocol, over a plain socket."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=3)

    def send(self, command: int, arg0: int, arg1: int, payload: bytes = b"",
             *, with_checksum: bool = False) -> None:
        message = p.Message(command, arg0, arg1, payload)
        self.sock.sendall(p.encode(message, with_checksum=with_checksum))

    def recv(self, timeout: float = 3.0) -> p.Message:
        self.sock.settimeout(timeout)
        header = self._exact(p.HEADER_SIZE)
        command, arg0, arg1, length, check = p.decode_header(header, p.DEVICE_MAX_PAYLOAD)
        payload = self._exact(length) if length else b""
        self.last_check = check
        return p.Message(command, arg0, arg1, payload)

    def nothing_within(self, seconds: float) -> bool:
        self.sock.settimeout(seconds)
        try:
            self.sock.recv(1, socket.MSG_PEEK)
        except TimeoutError:
            return True
        return False  # data arrived, or the device closed the link

    def handshake(self, version: int = p.VERSION_SKIP_CHECKSUM,
                  max_payload: int = 1024 * 1024) -> p.Message:
        self.send(p.A_CNXN, version, max_payload, HOST_BANNER)
        return self.recv()

    def open(self, local_id: int, service: str) -> int:
        """OPEN a service; returns the device's stream id."""
        self.send(p.A_OPEN, local_id, 0, service.encode() + b"\0")
        reply = self.recv()
        assert reply.command == p.A_OKAY and reply.arg1 == local_id, reply
        return reply.arg0

    def read_stream(self, local_id: int, remote_id: int) -> bytes:
        """All data of a stream until the device closes it, acknowledging each WRTE."""
        data = b""
        while True:
            msg = self.recv()
            if msg.command == p.A_CLSE:
                return data
            if msg.command == p.A_OKAY:
                continue  # the device acknowledging one of our WRTEs
            assert msg.command == p.A_WRTE and msg.arg1 == local_id
            data += msg.payload
            self.send(p.A_OKAY, local_id, remote_id)

    def close(self) -> None:
        self.sock.close()

    def _exact(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("device closed the connection")
            data += chunk
        return data


@pytest.fixture
def phone() -> Iterator[SimPhone]:
    sim = SimPhone(make_profile(3))
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def host(phone: SimPhone) -> Iterator[RawHost]:
    raw = RawHost(phone.port)
    yield raw
    raw.close()


def test_handshake_negotiates_version_and_payload_and_sends_the_banner(host: RawHost) -> None:
    reply = host.handshake(max_payload=256 * 1024)
    assert reply.command == p.A_CNXN
    assert reply.arg0 == p.VERSION_SKIP_CHECKSUM
    assert reply.arg1 == 256 * 1024  # the smaller of ours (1 MiB) and the host's
    banner = reply.payload.decode()
    assert banner.startswith("device::")
    fields = dict(item.split("=", 1) for item in banner[len("device::"):].split(";"))
    assert fields["ro.product.model"] == "Galaxy S23"
    assert "shell_v2" in fields["features"].split(",")


def test_old_hosts_get_checksummed_messages(host: RawHost) -> None:
    reply = host.handshake(version=p.VERSION_MIN, max_payload=4096)
    assert reply.arg0 == p.VERSION_MIN and reply.arg1 == 4096
    assert host.last_check == p.checksum(reply.payload) != 0
    host.open(1, "shell:echo checked")
    msg = host.recv()
    assert msg.payload == b"checked\n" and host.last_check == p.checksum(msg.payload)


def test_unknown_service_is_refused_with_clse(host: RawHost) -> None:
    host.handshake()
    host.send(p.A_OPEN, 7, 0, b"framebuffer:\0")
    reply = host.recv()
    assert (reply.command, reply.arg0, reply.arg1) == (p.A_CLSE, 0, 7)


def test_one_write_in_flight_until_the_host_says_okay(host: RawHost, phone: SimPhone) -> None:
    host.handshake(max_payload=4096)
    phone.state.fs.write("/sdcard/big.txt", b"x" * 20000)
    remote = host.open(1, "shell:cat /sdcard/big.txt")
    first = host.recv()
    assert first.command == p.A_WRTE and len(first.payload) == 4096
    assert host.nothing_within(0.3)  # no second WRTE before our OKAY
    host.send(p.A_OKAY, 1, remote)
    rest = host.read_stream(1, remote)
    assert len(first.payload) + len(rest) == 20000


def test_clse_from_the_host_stops_a_running_command_at_once(
    host: RawHost, phone: SimPhone
) -> None:
    host.handshake()
    remote = host.open(1, "shell:sleep 30; echo late")
    started = time.monotonic()
    host.send(p.A_CLSE, 1, remote)
    second = host.open(2, "shell,v2:echo fine")
    data = host.read_stream(2, second)
    assert time.monotonic() - started < 1.0
    assert data == struct.pack("<BI", 1, 5) + b"fine\n" + struct.pack("<BI", 3, 1) + b"\0"
    assert host.nothing_within(0.2)  # the cancelled shell never writes "late"


def test_shell_v2_stdin_reaches_the_command(host: RawHost) -> None:
    host.handshake()
    remote = host.open(1, "shell,v2,raw:cat")
    host.send(p.A_WRTE, 1, remote, struct.pack("<BI", 0, 6) + b"piped\n")
    assert host.recv().command == p.A_OKAY
    host.send(p.A_WRTE, 1, remote, struct.pack("<BI", 4, 0))  # close stdin
    assert host.recv().command == p.A_OKAY
    data = host.read_stream(1, remote)
    assert data == struct.pack("<BI", 1, 6) + b"piped\n" + struct.pack("<BI", 3, 1) + b"\0"


def test_unauthorized_phone_plays_the_auth_exchange(phone: SimPhone) -> None:
    phone.set_unauthorized(True)
    host = RawHost(phone.port)
    try:
        _auth_exchange(host, phone)
    finally:
        host.close()


def _auth_exchange(host: RawHost, phone: SimPhone) -> None:
    host.send(p.A_CNXN, p.VERSION_SKIP_CHECKSUM, 1024 * 1024, HOST_BANNER)
    token = host.recv()
    assert (token.command, token.arg0, len(token.payload)) == (p.A_AUTH, p.AUTH_TOKEN, 20)
    host.send(p.A_AUTH, p.AUTH_SIGNATURE, 0, b"s" * 256)
    again = host.recv()
    assert again.arg0 == p.AUTH_TOKEN and again.payload != token.payload
    host.send(p.A_AUTH, p.AUTH_RSAPUBLICKEY, 0, b"QAAAA... user@host\0")
    assert host.nothing_within(0.3)  # the "allow USB debugging?" prompt is up
    host.send(p.A_OPEN, 1, 0, b"shell:id\0")
    assert host.nothing_within(0.2)  # nothing runs before authorisation
    phone.set_unauthorized(False)  # the user taps "Allow"
    assert host.recv().command == p.A_CNXN


def test_garbage_drops_the_connection(host: RawHost, phone: SimPhone) -> None:
    host.handshake()
    host.sock.sendall(b"GARBAGE!" * 3)
    host.sock.settimeout(2)
    assert host.sock.recv(1) == b""
    # The phone keeps serving new connections.
    other = RawHost(phone.port)
    try:
        assert other.handshake().command == p.A_CNXN
    finally:
        other.close()


def test_unplug_drops_links_and_refuses_new_ones(host: RawHost, phone: SimPhone) -> None:
    host.handshake()
    phone.unplug()
    host.sock.settimeout(2)
    try:
        data = host.sock.recv(1)
    except ConnectionResetError:
        data = b""  # the cable was pulled: a reset is as good as a close
    assert data == b""
    with pytest.raises(ConnectionRefusedError):
        RawHost(phone.port)
    phone.plug()
    again = RawHost(phone.port)
    try:
        assert again.handshake().command == p.A_CNXN
    finally:
        again.close()


def _read_until(host: RawHost, local_id: int, remote_id: int, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        msg = host.recv()
        if msg.command == p.A_OKAY:
            continue  # the device acknowledging our WRTE
        assert msg.command == p.A_WRTE, msg
        data += msg.payload
        host.send(p.A_OKAY, local_id, remote_id)
    return data


def test_interactive_pty_shell_prompts_echoes_and_interrupts(host: RawHost) -> None:
    host.handshake()
    remote = host.open(1, "shell:")
    prompt = b"dm1q:/ $ "
    assert _read_until(host, 1, remote, prompt) == prompt
    host.send(p.A_WRTE, 1, remote, b"echo hi\r")
    output = _read_until(host, 1, remote, b"hi\r\n" + prompt)
    assert output.startswith(b"echo hi\r\n")  # the PTY echoes what was typed
    host.send(p.A_WRTE, 1, remote, b"sleep 30\r")
    _read_until(host, 1, remote, b"sleep 30\r\n")
    started = time.monotonic()
    host.send(p.A_WRTE, 1, remote, b"\x03")  # Ctrl-C
    assert _read_until(host, 1, remote, prompt).endswith(b"^C\r\n" + prompt)
    assert time.monotonic() - started < 1.0
    host.send(p.A_WRTE, 1, remote, b"exit 5\r")
    rest = host.read_stream(1, remote)  # the session ends: CLSE
    assert b"exit 5" in rest


def test_a_phone_whose_picked_port_was_taken_picks_another() -> None:
    sim = SimPhone(make_profile(1))
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", sim.port))  # taken between picking and listening
    squatter.listen()
    try:
        taken = sim.port
        sim.start()
        assert sim.port != taken and sim.listening
        raw = RawHost(sim.port)
        assert raw.handshake().command == p.A_CNXN
        raw.close()
    finally:
        sim.stop()
        squatter.close()
