"""Where TaskDesk keeps its files. One module, one override (``--data-dir``).

Layout under the data directory::

    taskdesk.db        the SQLite store (mode 0600)
    backups/           copies taken before a schema migration
    artifacts/         screenshots, pulled files, logs referenced by executions
    logs/              rotating application log
    sim/               the simulated lab's private adb home (demo mode)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "taskdesk"
ENV_DATA_DIR = "TASKDESK_DATA_DIR"


@dataclass(frozen=True)
class Paths:
    data_dir: Path

    @classmethod
    def resolve(cls, override: str | os.PathLike[str] | None = None) -> Paths:
        raw = override or os.environ.get(ENV_DATA_DIR)
        base = Path(raw).expanduser() if raw else Path(platformdirs.user_data_dir(APP_NAME))
        return cls(data_dir=base.resolve())

    @property
    def database(self) -> Path:
        return self.data_dir / "taskdesk.db"

    @property
    def backups(self) -> Path:
        return self.data_dir / "backups"

    @property
    def artifacts(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    @property
    def sim(self) -> Path:
        return self.data_dir / "sim"

    def ensure(self) -> Paths:
        for path in (self.data_dir, self.backups, self.artifacts, self.logs):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self
