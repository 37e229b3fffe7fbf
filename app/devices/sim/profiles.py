"""Phone profiles: what a simulated phone claims to be.

The catalogue is a realistic lab mix (Google, Samsung, Motorola, OnePlus,
Xiaomi; Android 11-14; mostly arm64). :func:`lab_profiles` draws a fleet from
it deterministically per seed, with serial numbers ``SIM0001``, ``SIM0002``...
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class PhoneProfile:
    """Identity and starting battery state of one simulated phone."""

    serial_no: str
    model: str
    manufacturer: str
    android_version: str
    sdk: int
    abi: str
    battery_level: int = 100
    battery_temp_c: float = 30.0
    charging: bool = True
    # Codenames for ro.product.name / ro.product.device (shown by `adb devices -l`).
    product: str = "sim"
    device: str = "sim"
    brand: str = ""
    extra_packages: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class _Model:
    model: str
    manufacturer: str
    brand: str
    product: str
    device: str
    android_version: str
    sdk: int
    abi: str
    extra_packages: tuple[str, ...]


_GOOGLE = ("com.google.android.apps.photos", "com.google.android.youtube")
_SAMSUNG = ("com.samsung.android.app.notes", "com.sec.android.app.launcher")

CATALOGUE: tuple[_Model, ...] = (
    _Model("Pixel 7", "Google", "google", "panther", "panther", "14", 34, "arm64-v8a", _GOOGLE),
    _Model("Pixel 8", "Google", "google", "shiba", "shiba", "14", 34, "arm64-v8a", _GOOGLE),
    _Model("Galaxy S23", "samsung", "samsung", "dm1qxeea", "dm1q", "14", 34, "arm64-v8a",
           _SAMSUNG),
    _Model("Galaxy A54", "samsung", "samsung", "a54xnseea", "a54x", "13", 33, "arm64-v8a",
           _SAMSUNG),
    _Model("Moto G Power", "motorola", "motorola", "tonga_g", "tonga", "12", 31, "armeabi-v7a",
           ("com.motorola.launcher3", "com.motorola.camera3")),
    _Model("OnePlus 11", "OnePlus", "OnePlus", "CPH2449EEA", "OP594DL1", "13", 33, "arm64-v8a",
           ("com.oneplus.camera", "net.oneplus.launcher")),
    _Model("Xiaomi 13", "Xiaomi", "Xiaomi", "fuxi_eea", "fuxi", "13", 33, "arm64-v8a",
           ("com.miui.home", "com.miui.securitycenter")),
    _Model("Pixel 6a", "Google", "google", "bluejay", "bluejay", "13", 33, "arm64-v8a", _GOOGLE),
    _Model("Galaxy S21", "samsung", "samsung", "o1sxeea", "o1s", "12", 31, "arm64-v8a", _SAMSUNG),
    _Model("Redmi Note 12", "Xiaomi", "Redmi", "tapas_global", "tapas", "13", 33, "arm64-v8a",
           ("com.miui.home",)),
    _Model("Nokia G21", "HMD Global", "Nokia", "Nokia_G21", "NG21", "11", 30, "armeabi-v7a",
           ()),
    _Model("Pixel 4a", "Google", "google", "sunfish", "sunfish", "11", 30, "arm64-v8a", _GOOGLE),
)


def make_profile(index: int, rng: random.Random | None = None) -> PhoneProfile:
    """The profile of phone number ``index`` (1-based) in a lab.

    Models cycle through the catalogue so any twelve phones are all different;
    battery state is drawn from ``rng`` (a full, charging battery without one).
    """
    model = CATALOGUE[(index - 1) % len(CATALOGUE)]
    profile = PhoneProfile(
        serial_no=f"SIM{index:04d}",
        model=model.model,
        manufacturer=model.manufacturer,
        android_version=model.android_version,
        sdk=model.sdk,
        abi=model.abi,
        product=model.product,
        device=model.device,
        brand=model.brand,
        extra_packages=model.extra_packages,
    )
    if rng is not None:
        profile.battery_level = rng.randint(35, 100)
        profile.battery_temp_c = round(rng.uniform(27.0, 36.0), 1)
        profile.charging = rng.random() < 0.75
    return profile


def lab_profiles(count: int, seed: int = 0) -> list[PhoneProfile]:
    """``count`` profiles, deterministic for a given seed."""
    rng = random.Random(f"taskdesk-sim-lab:{seed}")
    return [make_profile(i, rng) for i in range(1, count + 1)]
