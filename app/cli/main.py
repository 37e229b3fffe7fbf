"""Argument parsing and dispatch for every ``taskdesk`` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from app import __version__
from app.cli import doctor, serve, task_cmd
from app.cli.common import CliError, opened_store
from app.core.errors import TaskDeskError
from app.core.paths import Paths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taskdesk",
        description="Operator console for Android phone labs. Without a command, opens "
                    "the console window.",
    )
    parser.add_argument("--version", action="version", version=f"taskdesk {__version__}")
    parser.add_argument("--data-dir", help="where the store, artifacts and logs live "
                                           "(default: the platform data directory)")
    parser.add_argument("--database", help="a postgresql:// URL to share one database "
                                           "between workstations (default: SQLite)")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    serve.add_lab_arguments(parser)
    parser.add_argument("--self-test", action="store_true",
                        help="start, run a few demo tasks, print a summary and exit")
    sub = parser.add_subparsers(dest="command")
    serve.add_parser(sub)
    task_cmd.add_parsers(sub)
    doctor.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    paths = Paths.resolve(args.data_dir)
    from app.logsetup import setup_logging

    try:
        if args.command is None:
            from app.gui.app import run_console

            return run_console(args, paths)
        if args.command == "serve":
            paths.ensure()
            setup_logging(paths.logs, args.log_level)
            return asyncio.run(serve.run_serve(args, paths, args.database))
        setup_logging(paths.logs if paths.data_dir.exists() else None, "WARNING")
        if args.command == "doctor":
            return doctor.cmd_doctor(args, paths, args.database)
        key = (args.command, getattr(args, "task_command", None))
        handler = task_cmd.COMMANDS[key]
        with opened_store(paths, args.database):
            return handler(args)
    except CliError as exc:
        print(f"taskdesk: {exc}", file=sys.stderr)
        return exc.code
    except TaskDeskError as exc:
        print(f"taskdesk: {exc.message}", file=sys.stderr)
        return 2 if exc.code == "invalid_input" else 1
    except KeyboardInterrupt:
        return 130
