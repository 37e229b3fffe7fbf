"""The simulated phone lab: phones speaking adbd's protocol behind a real adb server.

Only the phone is simulated. Each :class:`SimPhone` is a TCP server on
127.0.0.1 that a private, real adb server (:mod:`app.devices.adbserver`)
reaches through ``adb connect``; the unmodified adbutils client then talks to
that server as it would to any lab. :class:`SimLab` runs a fleet of them.
"""

from app.devices.sim.lab import SimLab
from app.devices.sim.phone import SimPhone
from app.devices.sim.profiles import PhoneProfile, lab_profiles, make_profile

__all__ = ["PhoneProfile", "SimLab", "SimPhone", "lab_profiles", "make_profile"]
