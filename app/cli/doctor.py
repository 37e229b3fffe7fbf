"""``taskdesk doctor``: what is wrong with this workstation, and how to fix it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from app.cli.common import print_json
from app.core.paths import Paths


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = sub.add_parser("doctor", help="check adb, devices, keyring, data directory")
    doctor.add_argument("--adb-host", default="127.0.0.1")
    doctor.add_argument("--adb-port", type=int, default=5037)
    doctor.add_argument("--json", action="store_true")


def _adb_servers() -> list[dict[str, Any]]:
    """adb server processes on this machine (Linux /proc; elsewhere empty)."""
    found = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or not argv[0] or Path(argv[0].decode(errors="replace")).name != "adb":
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if "server" not in args and "fork-server" not in args:
            continue
        port = 5037
        if "-P" in args and args.index("-P") + 1 < len(args):
            port = int(args[args.index("-P") + 1])
        try:
            exe = os.readlink(entry / "exe")
        except OSError:
            exe = args[0]
        found.append({"pid": int(entry.name), "port": port, "binary": exe})
    return found


def check_adb(host: str, port: int) -> dict[str, Any]:
    from app.devices.adb_client import SafeAdbClient

    result: dict[str, Any] = {"host": host, "port": port}
    client = SafeAdbClient(host, port)
    try:
        result["version"] = int(client.host_query("host:version"), 16)
        result["alive"] = True
        states = client.device_states()
    except Exception as exc:
        result["alive"] = False
        result["error"] = str(exc) or type(exc).__name__
        result["hint"] = (f"no adb server answers on {host}:{port}: start one with "
                          f"`adb -P {port} start-server`, or try `taskdesk --demo`")
        return result
    by_state: dict[str, list[str]] = {}
    for serial, state in states.items():
        by_state.setdefault(state.value, []).append(serial)
    result["devices"] = by_state
    if by_state.get("unauthorized"):
        result["hint"] = ("unauthorized phones: unlock each one and accept the 'Allow USB "
                          "debugging' prompt (tick 'Always allow'); if no prompt shows, revoke "
                          "USB debugging authorisations in Developer options and replug")
    servers = _adb_servers()
    result["servers"] = servers
    binaries = {s["binary"] for s in servers if s["port"] == port}
    if len(servers) > 1 and len({s["port"] for s in servers}) < len(servers):
        result["conflict"] = "several adb servers share a port"
    elif len(binaries) > 1:
        result["conflict"] = "different adb binaries are fighting for the server port"
    if "conflict" in result:
        result["hint"] = ("adb version conflict: several adb binaries (SDK platform-tools, "
                          "distro package, IDE bundles) restart each other's server. Use one: "
                          "`adb kill-server` with each, then start only the newest")
    return result


def check_keyring() -> dict[str, Any]:
    from app.engine.secrets import SecretStore

    store = SecretStore()
    return {"backend": store.backend_description(), "secure": store.is_secure()}


def check_store(paths: Paths, database: str | None) -> dict[str, Any]:
    from app.store import tasks
    from app.store.db import close_database, sqlite_version
    from app.store.schema import SCHEMA_VERSION, open_store, schema_version

    out: dict[str, Any] = {"data_dir": str(paths.data_dir),
                           "writable": os.access(paths.data_dir, os.W_OK)}
    location = database or str(paths.database)
    out["database"] = location if database is None else "(postgresql)"
    try:
        db = open_store(location, paths.backups)
        out["schema_version"] = schema_version(db)
        out["schema_expected"] = SCHEMA_VERSION
        out["sqlite"] = sqlite_version()
        out["tasks"] = {k.value: v for k, v in tasks.count_by_state().items()}
        if database is None and paths.database.exists():
            out["size_mb"] = round(paths.database.stat().st_size / 1e6, 2)
    except Exception as exc:
        out["error"] = str(exc)
    finally:
        close_database()
    return out


def cmd_doctor(args: argparse.Namespace, paths: Paths, database: str | None) -> int:
    paths.ensure()
    report = {
        "adb": check_adb(args.adb_host, args.adb_port),
        "keyring": check_keyring(),
        "store": check_store(paths, database),
    }
    if args.json:
        print_json(report)
    else:
        _print_report(report)
    problems = (not report["adb"].get("alive") or "conflict" in report["adb"]
                or "error" in report["store"])
    return 1 if problems else 0


def _print_report(report: dict[str, Any]) -> None:
    adb = report["adb"]
    ok = "ok  " if adb.get("alive") else "FAIL"
    print(f"[{ok}] adb server {adb['host']}:{adb['port']}"
          + (f" (protocol version {adb['version']})" if adb.get("version") else
             f": {adb.get('error', '')}"))
    for state, serials in sorted(adb.get("devices", {}).items()):
        print(f"       {state}: {len(serials)} ({', '.join(sorted(serials)[:6])}"
              f"{', …' if len(serials) > 6 else ''})")
    if adb.get("conflict"):
        print(f"[FAIL] {adb['conflict']}")
    if adb.get("hint"):
        print(f"       hint: {adb['hint']}")
    key = report["keyring"]
    print(f"[{'ok  ' if key['secure'] else 'warn'}] keyring: {key['backend']}")
    store = report["store"]
    if "error" in store:
        print(f"[FAIL] store {store['database']}: {store['error']}")
    else:
        print(f"[ok  ] data directory {store['data_dir']}"
              f"{'' if store['writable'] else ' (NOT writable)'}")
        print(f"[ok  ] store schema v{store['schema_version']} "
              f"(SQLite {store.get('sqlite')}), tasks: {store.get('tasks')}")
