"""Engine settings (defaults follow docs/architecture.md)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class EngineConfig:
    lease_s: float = 30.0
    max_tasks_per_job: int = 1
    host_concurrency: int = 4
    device_lost_grace_s: float = 10.0
    battery_interval_s: float = 60.0
    rate_limit_per_device: int = 0  # task starts per window; 0 = off
    rate_window_s: float = 3600.0
    retention_days: int = 30
    timeout_minutes: int = 10
    cleanup_cron: str = "0 2 * * *"
    timeout_sweep_cron: str = "*/30 * * * *"
    external_poll_s: float = 1.0  # notice tasks written by other processes
    device_workers: int = 256
    instance_id: str = "local"

    def owner_token(self) -> str:
        """Identifies this engine process in leases: host/instance#pid:nonce."""
        return f"{self.owner_prefix()}{os.getpid()}:{os.urandom(3).hex()}"

    def owner_prefix(self) -> str:
        return f"{socket.gethostname()}/{self.instance_id}#"
