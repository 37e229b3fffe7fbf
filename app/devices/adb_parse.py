"""Pure parsers for what adb and Android tools print.

Kept free of sockets and threads so every rule (getprop format, battery fields,
package-manager verdicts, the shell v2 framing, the exit-code marker) is tested
on plain bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from app.core.enums import DeviceState
from app.devices.base import BatteryInfo, DeviceError

# ``[ro.product.model]: [Pixel 7]``; a value may span lines, so match lazily up to
# the ``]`` that ends a line.
_GETPROP_LINE = re.compile(r"^\[([^\]\n]+)\]: \[(.*?)\]\r?$", re.MULTILINE | re.DOTALL)

# ``host:port`` (IPv4, names, bracketed IPv6) and mDNS TLS services are network
# transports; everything else (USB serials, emulator-5554) counts as usb.
_TCP_SERIAL = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[\w.\-]+):\d{1,5}$")
_MDNS_SERIAL = re.compile(r"\._adb-tls-(connect|pairing)\._tcp\.?$")

_PACKAGE_NAME = re.compile(r"^[A-Za-z][\w]*(\.[A-Za-z_][\w]*)*$")

SIM_PROPERTY = "ro.taskdesk.sim"


def parse_getprop(text: str) -> dict[str, str]:
    """Parse the output of a bare ``getprop`` (every property) into a dict."""
    return {m.group(1): m.group(2) for m in _GETPROP_LINE.finditer(text)}


@dataclass(frozen=True)
class DeviceMetadata:
    """What one ``getprop`` call tells us about a phone."""

    transport: str
    model: str = ""
    manufacturer: str = ""
    android_version: str = ""
    sdk: int | None = None
    abi: str = ""


def classify_transport(serial: str, props: dict[str, str]) -> str:
    """``sim`` for the simulated lab, ``tcp`` for network serials, else ``usb``."""
    if props.get(SIM_PROPERTY, "").strip() == "1":
        return "sim"
    if _TCP_SERIAL.match(serial) or _MDNS_SERIAL.search(serial):
        return "tcp"
    return "usb"


def metadata_from_props(serial: str, props: dict[str, str]) -> DeviceMetadata:
    """Pick the fields TaskDesk shows out of a full property dump."""
    sdk_text = props.get("ro.build.version.sdk", "").strip()
    abi = props.get("ro.product.cpu.abi", "").strip()
    if not abi:
        abi = props.get("ro.product.cpu.abilist", "").split(",")[0].strip()
    return DeviceMetadata(
        transport=classify_transport(serial, props),
        model=props.get("ro.product.model", "").strip(),
        manufacturer=props.get("ro.product.manufacturer", "").strip(),
        android_version=props.get("ro.build.version.release", "").strip(),
        sdk=int(sdk_text) if sdk_text.isdigit() else None,
        abi=abi,
    )


def usb_path_from_devpath(devpath: str) -> str:
    """``get-devpath`` answers ``unknown`` for transports without a USB path."""
    text = devpath.strip()
    return "" if text in ("", "unknown") else text


def parse_device_list(text: str) -> dict[str, DeviceState]:
    """Parse a ``host:devices`` / ``track-devices`` block (``serial\\tstate`` lines)."""
    found: dict[str, DeviceState] = {}
    for line in text.splitlines():
        fields = line.strip().split(None, 2)
        if len(fields) >= 2:
            found[fields[0]] = DeviceState.from_adb(fields[1])
    return found


def parse_battery(text: str) -> BatteryInfo:
    """Parse ``dumpsys battery``.

    ``temperature`` is in tenths of a degree Celsius; ``level`` is scaled by
    ``scale`` when a device reports something other than 100. Charging means any
    of the AC/USB/wireless/dock sources is powered.
    """
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values[key.strip().lower()] = value.strip()

    level: int | None = None
    if _is_int(values.get("level")):
        level = int(values["level"])
        if _is_int(values.get("scale")) and int(values["scale"]) not in (0, 100):
            level = round(level * 100 / int(values["scale"]))

    temperature: float | None = None
    if _is_int(values.get("temperature")):
        temperature = int(values["temperature"]) / 10.0

    sources = [values[k] for k in
               ("ac powered", "usb powered", "wireless powered", "dock powered")
               if k in values]
    charging = any(v.lower() == "true" for v in sources) if sources else None
    return BatteryInfo(level=level, temperature_c=temperature, charging=charging)


def _is_int(text: str | None) -> bool:
    return text is not None and re.fullmatch(r"-?\d+", text) is not None


def check_pm_output(text: str, action: str) -> str:
    """Return the package manager's message, or raise DeviceError with its failure text.

    ``pm`` prints ``Success`` or ``Failure [REASON...]`` (older versions print
    ``Error: ...`` for unreadable files); its exit code is not reliable across
    Android versions, so the text decides.
    """
    message = text.strip()
    failure = re.search(r"Failure \[[^\]]*\]?.*", message)
    if failure:
        raise DeviceError(f"{action} failed: {failure.group(0).strip()}")
    if "Success" in message:
        return message
    error = re.search(r"^(Error|Exception).*$", message, re.MULTILINE)
    if error:
        raise DeviceError(f"{action} failed: {error.group(0).strip()}")
    raise DeviceError(f"{action} failed: unexpected package manager output {message[:200]!r}")


def validate_package_name(package: str) -> str:
    """Refuse anything that is not a Java package name (it ends up in a shell line)."""
    if not _PACKAGE_NAME.fullmatch(package):
        raise DeviceError(f"invalid package name {package!r}")
    return package


# --- shell exit codes -----------------------------------------------------------

EXIT_MARKER = b"__TD_EXIT__"
# Longest tail the marker can occupy: marker, up to 3 digits, \r\n.
MARKER_HOLDBACK = len(EXIT_MARKER) + 5
_MARKER_AT_END = re.compile(re.escape(EXIT_MARKER) + rb"(\d{1,3})\r?\n?$")


def with_exit_marker(command: str) -> str:
    """Make a v1 shell print the exit status after the command.

    The newline (not ``;``) keeps the marker out of a trailing ``# comment`` or a
    trailing ``&`` in the operator's command.
    """
    return f"{command}\necho {EXIT_MARKER.decode()}$?"


class MarkerStripper:
    """Passes a v1 shell stream through, holding back the last bytes that may be
    the exit marker, so output capping never sees (or cuts) the marker."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        """Take a chunk; return the bytes that are certainly command output."""
        self._pending += chunk
        if len(self._pending) <= MARKER_HOLDBACK:
            return b""
        ready = self._pending[:-MARKER_HOLDBACK]
        self._pending = self._pending[-MARKER_HOLDBACK:]
        return ready

    def finish(self) -> tuple[bytes, int | None]:
        """At end of stream: the remaining output and the exit code (None if absent)."""
        match = _MARKER_AT_END.search(self._pending)
        if not match:
            return self._pending, None
        return self._pending[: match.start()], int(match.group(1))


# --- shell protocol v2 -------------------------------------------------------------

V2_STDIN = 0
V2_STDOUT = 1
V2_STDERR = 2
V2_EXIT = 3
V2_CLOSE_STDIN = 4
V2_WINDOW_SIZE = 5


def encode_v2_packet(packet_id: int, payload: bytes) -> bytes:
    """One shell v2 packet: id byte, little-endian u32 length, payload."""
    return bytes([packet_id]) + len(payload).to_bytes(4, "little") + payload


class ShellV2Decoder:
    """Incremental decoder for the shell v2 framing (packets may straddle reads)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> Iterator[tuple[int, bytes]]:
        """Yield every complete ``(packet_id, payload)`` now available."""
        self._buffer += chunk
        while len(self._buffer) >= 5:
            length = int.from_bytes(self._buffer[1:5], "little")
            if len(self._buffer) < 5 + length:
                return
            packet_id = self._buffer[0]
            payload = bytes(self._buffer[5 : 5 + length])
            del self._buffer[: 5 + length]
            yield packet_id, payload

    @property
    def pending(self) -> int:
        """Bytes of an incomplete packet still buffered."""
        return len(self._buffer)
