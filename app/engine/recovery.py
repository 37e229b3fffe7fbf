"""Start-up recovery: work claimed by a dead engine process comes back at once.

Leases name their owner as ``host/instance#pid:nonce``. At start-up, leases of
this host and instance whose process is gone (kill -9, power loss) are reaped
immediately instead of waiting for them to expire; leases of other hosts wait
for expiry (the lease reaper handles them).
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

log = logging.getLogger(__name__)


def instance_id(data_dir: Path) -> str:
    """A stable id for this data directory (one per installation)."""
    path = data_dir / "instance-id"
    try:
        value = path.read_text(encoding="ascii").strip()
        if value:
            return value
    except FileNotFoundError:
        pass
    value = uuid.uuid4().hex[:12]
    path.write_text(value + "\n", encoding="ascii")
    return value


def pid_of(owner: str, prefix: str) -> int | None:
    if not owner.startswith(prefix):
        return None
    text = owner[len(prefix):].split(":", 1)[0]
    return int(text) if text.isdigit() else None


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def dead_owners(owners: set[str], prefix: str, live_owner: str) -> list[str]:
    """Owners from this host/instance whose process no longer exists."""
    dead = []
    for owner in owners:
        if owner == live_owner:
            continue
        pid = pid_of(owner, prefix)
        if pid is None:
            continue
        if pid == os.getpid() or not pid_alive(pid):
            dead.append(owner)
    return sorted(dead)
