"""``taskdesk-agent``: the remote agent process."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from app import __version__
from app.core.errors import ValidationError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="taskdesk-agent",
                                     description="TaskDesk remote agent")
    parser.add_argument("--version", action="version", version=f"taskdesk-agent {__version__}")
    parser.add_argument("--config", type=Path, required=True, help="path to config.toml")
    parser.add_argument("--check", action="store_true",
                        help="validate the config, print what it allows, and exit")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    from app.agent.config import parse_config

    try:
        config = parse_config(args.config.read_text(encoding="utf-8"))
    except OSError as exc:
        print(f"taskdesk-agent: cannot read {args.config}: {exc.strerror}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        print(f"taskdesk-agent: {exc.message}", file=sys.stderr)
        return 2
    for server in config.servers:
        allowed = ", ".join(sorted(server.allowed)) or "nothing (every task kind is off)"
        print(f"server {server.name} ({server.ws_url}): allows {allowed}")
    if args.check:
        return 0
    print("taskdesk-agent: this release validates agent configs only; the console's "
          "agent hub is not available yet, so there is nothing to connect to",
          file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main())
