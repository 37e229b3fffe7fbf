"""Logging: a rotating file in the data directory plus stderr, one format.

Secrets registered with ``redact`` are masked in every record that reaches a
handler, whatever module logged them.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_secrets: set[str] = set()


def redact(secret: str) -> None:
    """Mask this value in all future log output."""
    if secret and len(secret) >= 4:
        _secrets.add(secret)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            message = record.getMessage()
            masked = message
            for secret in _secrets:
                masked = masked.replace(secret, "****")
            if masked != message:
                record.msg, record.args = masked, None
        return True


def setup_logging(log_dir: Path | None, level: str = "INFO", *, stderr: bool = True) -> None:
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    formatter = logging.Formatter(FORMAT)
    redactor = RedactingFilter()
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            log_dir / "taskdesk.log", maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8")
        file_handler.setLevel(logging.DEBUG if level.upper() == "DEBUG" else logging.INFO)
        file_handler.setFormatter(formatter)
        file_handler.addFilter(redactor)
        root.addHandler(file_handler)
    if stderr:
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(level.upper())
        console.setFormatter(formatter)
        console.addFilter(redactor)
        root.addHandler(console)
    for noisy in ("asyncio", "peewee", "httpx", "httpcore", "adbutils", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
