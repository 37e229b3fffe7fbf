"""Run a simulated lab until Ctrl-C: ``python -m app.devices.sim --phones 12``.

Prints the private adb server's port and the phones' serials, e.g. for
``adb -P PORT devices -l`` or ``taskdesk`` pointed at that server.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from app.devices.adbserver import bundled_adb_path
from app.devices.sim.lab import SimLab


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.devices.sim", description=__doc__)
    parser.add_argument("--phones", type=int, default=12, help="number of phones (default 12)")
    parser.add_argument("--adb-port", type=int, default=None, help="adb server port (free one)")
    parser.add_argument("--workdir", type=Path, default=None, help="adb home (a temp dir)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per command")
    parser.add_argument("--failure-rate", type=float, default=0.0,
                        help="probability that am start / input / screencap fail")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    lab = SimLab(args.phones, args.workdir, latency=args.latency,
                 failure_rate=args.failure_rate, seed=args.seed, adb_port=args.adb_port)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with lab:
        print(f"adb server: {lab.adb_host}:{lab.adb_port}  (adb: {bundled_adb_path()})")
        print(f"try: {bundled_adb_path()} -P {lab.adb_port} devices -l")
        for phone in lab.phones:
            p = phone.profile
            print(f"  {phone.address:<22} {p.serial_no}  {p.manufacturer} {p.model}, "
                  f"Android {p.android_version}, battery {p.battery_level}%")
        print("running; Ctrl-C to stop", flush=True)
        stop.wait()
    print("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
