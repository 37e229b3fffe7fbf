"""Everything a simulated phone remembers: properties, packages, files, battery.

The state is touched by shell commands on the sim loop and read (sometimes
changed) by tests and the lab from other threads; each field is either
immutable, a thread-safe structure, or updated by single assignments.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from app.devices.sim.fs import MemoryFs
from app.devices.sim.profiles import PhoneProfile

SCREEN_WIDTH = 360
SCREEN_HEIGHT = 640

SYSTEM_PACKAGES = (
    "android",
    "com.android.chrome",
    "com.android.launcher3",
    "com.android.phone",
    "com.android.settings",
    "com.android.shell",
    "com.android.systemui",
    "com.android.vending",
    "com.google.android.gms",
)
# User apps the lab's phone image ships with (listed by `pm list packages -3`,
# uninstallable): the capture app the demo.capture kind drives.
PREINSTALLED_APPS = ("com.example.capture",)

# Battery model: slow enough to look real on a tile, fast enough to show in a demo.
DRAIN_PERCENT_PER_S = 1 / 60  # 1 % a minute on battery
CHARGE_PERCENT_PER_S = 1 / 30  # 2 % a minute on the charger


@dataclass(frozen=True)
class BatterySnapshot:
    level: int
    temperature_c: float
    charging: bool

    @property
    def status(self) -> int:
        """BatteryManager status: 2 charging, 3 discharging, 5 full."""
        if self.charging:
            return 5 if self.level >= 100 else 2
        return 3


class Battery:
    """A battery that drains off the charger and recovers on it (lazily, by elapsed time)."""

    def __init__(self, level: int, temperature_c: float, charging: bool) -> None:
        self._lock = threading.Lock()
        self._level = float(max(0, min(100, level)))
        self._temperature = temperature_c
        self._charging = charging
        self._since = time.monotonic()

    def snapshot(self) -> BatterySnapshot:
        with self._lock:
            self._advance()
            # Charging warms the phone a little, as real ones do.
            temp = self._temperature + (1.5 if self._charging and self._level < 100 else 0.0)
            return BatterySnapshot(round(self._level), round(temp, 1), self._charging)

    def set(self, level: int | None = None, temperature_c: float | None = None,
            charging: bool | None = None) -> None:
        with self._lock:
            self._advance()
            if level is not None:
                self._level = float(max(0, min(100, level)))
            if temperature_c is not None:
                self._temperature = temperature_c
            if charging is not None:
                self._charging = charging

    def _advance(self) -> None:
        now = time.monotonic()
        elapsed, self._since = now - self._since, now
        if self._charging:
            self._level = min(100.0, self._level + elapsed * CHARGE_PERCENT_PER_S)
        else:
            self._level = max(0.0, self._level - elapsed * DRAIN_PERCENT_PER_S)


@dataclass(frozen=True)
class LogEntry:
    seq: int
    timestamp: float
    pid: int
    level: str  # V D I W E F
    tag: str
    message: str

    def format(self, style: str = "threadtime") -> str:
        """One line in a ``logcat -v`` format (threadtime, time, brief or raw)."""
        stamp = time.strftime("%m-%d %H:%M:%S", time.gmtime(self.timestamp))
        millis = int(self.timestamp * 1000) % 1000
        if style == "raw":
            return self.message
        if style == "brief":
            return f"{self.level}/{self.tag}({self.pid:5d}): {self.message}"
        if style == "time":
            return f"{stamp}.{millis:03d} {self.level}/{self.tag}({self.pid:5d}): {self.message}"
        return (
            f"{stamp}.{millis:03d} {self.pid:5d} {self.pid:5d} {self.level} "
            f"{self.tag:<8}: {self.message}"
        )


class LogBuffer:
    """The phone's logcat ring buffer."""

    def __init__(self, maxlen: int = 2000) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=maxlen)
        self._seq = 0
        self._lock = threading.Lock()

    def add(self, level: str, tag: str, message: str, pid: int = 1000) -> None:
        with self._lock:
            self._seq += 1
            self._entries.append(LogEntry(self._seq, time.time(), pid, level, tag, message))

    def since(self, seq: int) -> list[LogEntry]:
        with self._lock:
            return [entry for entry in self._entries if entry.seq > seq]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    @property
    def last_seq(self) -> int:
        return self._seq


@dataclass
class InstalledApp:
    package: str
    path: str
    first_install: float
    last_update: float
    version_code: int = 1
    version_name: str = "1.0"


class PhoneState:
    """The phone's memory, shared by its services and shell commands."""

    def __init__(self, profile: PhoneProfile, *, seed: int = 0) -> None:
        self.profile = profile
        self.fs = MemoryFs()
        self.battery = Battery(profile.battery_level, profile.battery_temp_c, profile.charging)
        self.system_packages: frozenset[str] = frozenset(SYSTEM_PACKAGES) | frozenset(
            profile.extra_packages
        )
        self.installed_packages: set[str] = set(self.system_packages)
        self.running_packages: set[str] = {"com.android.systemui"}
        self.foreground: tuple[str, str] | None = None  # (package, activity)
        self.settings: dict[str, str] = {"screen_brightness": "128", "screen_brightness_mode": "1"}
        self.latency = 0.0
        self.failure_rate = 0.0
        self.commands_run = 0
        self.input_events = 0
        self.boot_time = time.time()
        self.rng = random.Random(f"{seed}:{profile.serial_no}")
        # Set by the phone: called (on the sim loop) when a command asks for a reboot.
        self.request_reboot: Callable[[], None] = lambda: None
        self.props = build_props(profile)
        self.apps: dict[str, InstalledApp] = {}  # metadata of packages installed with pm
        self.log = LogBuffer()
        self.restore_preinstalled_apps()
        self.screen_cache: tuple[object, bytes] | None = None
        self.log.add("I", "SystemServer", f"Booting {profile.manufacturer} {profile.model}")
        self.log.add("I", "ActivityManager", "System now ready")
        self.log.add("I", "BootReceiver", "Copying audit failures to DropBox")

    def restore_preinstalled_apps(self) -> None:
        """(Re)install the apps of the phone image that are missing."""
        for package in PREINSTALLED_APPS:
            if package not in self.installed_packages:
                path = f"/data/app/{package}-1/base.apk"
                self.fs.write(path, b"PK\x05\x06" + bytes(18))  # an empty zip
                self.apps[package] = InstalledApp(package, path, self.boot_time, self.boot_time)
                self.installed_packages.add(package)

    def pid_of(self, package: str) -> int:
        """A stable fake pid for a running package."""
        return 2000 + sum(package.encode()) % 20000

    def should_fail(self) -> bool:
        """Whether an injected failure hits this call (deterministic per seed and call order)."""
        return self.failure_rate > 0 and self.rng.random() < self.failure_rate


def build_props(profile: PhoneProfile) -> dict[str, str]:
    """The system properties ``getprop`` reports for a profile."""
    brand = profile.brand or profile.manufacturer.lower()
    release = profile.android_version
    fingerprint = (
        f"{brand}/{profile.product}/{profile.device}:{release}/SIM.{profile.sdk}0101.001/"
        f"{profile.sdk}01:user/release-keys"
    )
    abilist = "arm64-v8a,armeabi-v7a,armeabi" if profile.abi == "arm64-v8a" else profile.abi
    return {
        "dalvik.vm.heapsize": "512m",
        "gsm.sim.state": "ABSENT",
        "init.svc.adbd": "running",
        "persist.sys.locale": "en-US",
        "persist.sys.timezone": "UTC",
        "ro.boot.serialno": profile.serial_no,
        "ro.build.characteristics": "nosdcard",
        "ro.build.display.id": f"SIM.{profile.sdk}0101.001",
        "ro.build.fingerprint": fingerprint,
        "ro.build.tags": "release-keys",
        "ro.build.type": "user",
        "ro.build.version.release": release,
        "ro.build.version.sdk": str(profile.sdk),
        "ro.build.version.security_patch": "2024-01-05",
        "ro.debuggable": "0",
        "ro.hardware": profile.device,
        "ro.product.brand": brand,
        "ro.product.cpu.abi": profile.abi,
        "ro.product.cpu.abilist": abilist,
        "ro.product.device": profile.device,
        "ro.product.manufacturer": profile.manufacturer,
        "ro.product.model": profile.model,
        "ro.product.name": profile.product,
        "ro.secure": "1",
        "ro.serialno": profile.serial_no,
        "ro.taskdesk.sim": "1",
        "sys.boot_completed": "1",
        "wifi.interface": "wlan0",
    }
