"""``taskdesk task add|list|cancel|retry`` and ``taskdesk history``/``locks``."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from app.cli.common import CliError, print_json, print_table, short_time
from app.core.clock import iso, parse_time
from app.core.enums import TaskState
from app.core.errors import ValidationError
from app.core.taskspec import TaskSpec


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    task = sub.add_parser("task", help="queue, list, cancel and retry tasks")
    tsub = task.add_subparsers(dest="task_command", required=True)

    add = tsub.add_parser("add", help="enqueue a task (or a file of tasks)")
    add.add_argument("kind", nargs="?", help="task kind, e.g. adb.shell")
    add.add_argument("--payload", help="payload as a JSON object")
    add.add_argument("--payload-file", type=Path, help="read the payload JSON from a file")
    add.add_argument("--file", type=Path, help="bulk: a JSON list of tasks or a CSV file")
    add.add_argument("--queue", default="default")
    add.add_argument("--priority", default="normal", help="low|normal|high|critical")
    add.add_argument("--target", default="any",
                     help="any | device:SERIAL | tags:a,b | model:NAME | host")
    add.add_argument("--max-attempts", type=int, default=3)
    add.add_argument("--timeout", type=float, default=300.0, help="seconds per attempt")
    add.add_argument("--dedupe-key", help="lock name: skip while another run holds it")
    add.add_argument("--not-before", help="ISO time or epoch seconds")
    add.add_argument("--count", type=int, default=1, help="enqueue N copies")
    add.add_argument("--created-by", default="")
    add.add_argument("--json", action="store_true")

    ls = tsub.add_parser("list", help="list tasks")
    ls.add_argument("--state", help="comma list (default: pending,claimed,running)")
    ls.add_argument("--queue")
    ls.add_argument("--kind")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true")

    cancel = tsub.add_parser("cancel", help="cancel a task (a running one is interrupted)")
    cancel.add_argument("uid")
    cancel.add_argument("--actor", default="cli")

    retry = tsub.add_parser("retry", help="enqueue a fresh copy of a finished task")
    retry.add_argument("uid")
    retry.add_argument("--actor", default="cli")

    hist = sub.add_parser("history", help="search past executions")
    hist.add_argument("--module")
    hist.add_argument("--task-name")
    hist.add_argument("--status", help="comma list: SUCCESS,FAILURE,…")
    hist.add_argument("--device")
    hist.add_argument("--agent")
    hist.add_argument("--created-by")
    hist.add_argument("--since", help="ISO date/time")
    hist.add_argument("--until", help="ISO date/time")
    hist.add_argument("--search", help="text in task name, id or error")
    hist.add_argument("--task-id", help="every attempt of one task")
    hist.add_argument("--limit", type=int, default=50)
    hist.add_argument("--stats", action="store_true", help="counts instead of rows")
    hist.add_argument("--json", action="store_true")

    locks = sub.add_parser("locks", help="list locks (or force-release one)")
    locks.add_argument("--release", metavar="NAME", help="force-release this lock (audited)")
    locks.add_argument("--actor", default="cli")
    locks.add_argument("--reason", default="")
    locks.add_argument("--json", action="store_true")


# -- task add -------------------------------------------------------------------------
def _load_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{what} is not valid JSON: {exc}") from exc


def specs_from_args(args: argparse.Namespace) -> list[TaskSpec]:
    from app.core.targets import Target

    if args.file is not None:
        return specs_from_file(args.file, created_by=args.created_by)
    if not args.kind:
        raise CliError("name a task kind (e.g. taskdesk task add adb.shell --payload ...)"
                       " or give --file")
    payload: Any = {}
    if args.payload and args.payload_file:
        raise CliError("use --payload or --payload-file, not both")
    if args.payload:
        payload = _load_json(args.payload, "--payload")
    elif args.payload_file:
        payload = _load_json(args.payload_file.read_text(encoding="utf-8"), "--payload-file")
    if not 1 <= args.count <= 100_000:
        raise CliError("--count must be between 1 and 100000")
    spec = TaskSpec(
        kind=args.kind, payload=payload, queue=args.queue, priority=args.priority,
        target=Target.parse(args.target), max_attempts=args.max_attempts,
        timeout_s=args.timeout, dedupe_key=args.dedupe_key,
        not_before=parse_time(args.not_before) if args.not_before else None,
        source="cli", created_by=args.created_by,
    )
    return [spec] * args.count


def specs_from_file(path: Path, *, created_by: str = "", source: str = "cli") -> list[TaskSpec]:
    """A JSON list of task objects, or a CSV with columns kind,payload,queue,priority,…"""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    rows: list[Any]
    if path.suffix.lower() == ".csv":
        rows = []
        for line_no, row in enumerate(csv.DictReader(text.splitlines()), start=2):
            item: dict[str, Any] = {k: v for k, v in row.items() if k and v not in (None, "")}
            if "payload" in item:
                item["payload"] = _load_json(item["payload"], f"payload on line {line_no}")
            for key in ("max_attempts",):
                if key in item:
                    item[key] = int(item[key])
            if "timeout_s" in item:
                item["timeout_s"] = float(item["timeout_s"])
            rows.append(item)
    else:
        data = _load_json(text, str(path))
        rows = data if isinstance(data, list) else [data]
    specs = []
    for index, row in enumerate(rows, start=1):
        try:
            specs.append(TaskSpec.from_json(row, source=source, created_by=created_by))
        except ValidationError as exc:
            raise CliError(f"task #{index} in {path.name}: {exc.message}") from exc
    if not specs:
        raise CliError(f"{path} holds no tasks")
    return specs


def cmd_task_add(args: argparse.Namespace) -> int:
    from app.engine.kinds.registry import default_registry
    from app.store import tasks

    registry = default_registry()
    specs = specs_from_args(args)
    checked = []
    for index, spec in enumerate(specs, start=1):
        try:
            checked.append(registry.validate(spec.validated()))
        except ValidationError as exc:
            prefix = f"task #{index}: " if len(specs) > 1 else ""
            raise CliError(prefix + exc.message) from exc
    records = tasks.enqueue_many(checked) if len(checked) > 1 else [tasks.enqueue(checked[0])]
    if args.json:
        print_json([r.to_api() for r in records])
    elif len(records) == 1:
        print(records[0].uid)
    else:
        print(f"enqueued {len(records)} tasks ({records[0].uid} … {records[-1].uid})")
    return 0


def cmd_task_list(args: argparse.Namespace) -> int:
    from app.store import tasks

    if args.state:
        try:
            states = [TaskState(s.strip().lower()) for s in args.state.split(",") if s.strip()]
        except ValueError as exc:
            names = ", ".join(s.value for s in TaskState)
            raise CliError(f"unknown state in {args.state!r}: use {names}") from exc
    else:
        states = [TaskState.PENDING, TaskState.CLAIMED, TaskState.RUNNING]
    records = tasks.list_tasks(states=states, queue=args.queue, kind=args.kind,
                               limit=args.limit)
    if args.json:
        print_json([r.to_api() for r in records])
        return 0
    print_table(
        ["id", "kind", "state", "priority", "queue", "target", "attempts", "device", "created"],
        [[r.uid, r.kind, r.state.value, r.priority.label, r.queue, str(r.target),
          f"{r.attempts}/{r.max_attempts}", r.device_serial, short_time(iso(r.created_at))]
         for r in records],
    )
    return 0


def cmd_task_cancel(args: argparse.Namespace) -> int:
    from app.store import audit, tasks

    record = tasks.request_cancel(args.uid, actor=args.actor)
    audit.audit(args.actor, "task.cancel", args.uid)
    if record.state is TaskState.RUNNING:
        print(f"{args.uid}: cancel requested; the engine running it will stop it")
    else:
        print(f"{args.uid}: {record.state.value}")
    return 0


def cmd_task_retry(args: argparse.Namespace) -> int:
    from app.store import tasks

    old = tasks.get_task(args.uid)
    if not old.state.is_terminal:
        raise CliError(f"task {args.uid} is still {old.state.value}; cancel it first")
    record = tasks.enqueue(TaskSpec(
        kind=old.kind, payload=old.payload, queue=old.queue, priority=old.priority,
        target=old.target, max_attempts=old.max_attempts, timeout_s=old.timeout_s,
        dedupe_key=old.dedupe_key, source="cli", created_by=args.actor,
    ))
    print(record.uid)
    return 0


# -- history & locks --------------------------------------------------------------------
def cmd_history(args: argparse.Namespace) -> int:
    from app.core.history import ExecutionFilter
    from app.store import executions, history

    if args.task_id:
        items = executions.executions_for_task(args.task_id)
        return _print_executions(items, args.json)
    query = {k: v for k, v in {
        "module": args.module, "task_name": args.task_name, "status": args.status,
        "device": args.device, "agent": args.agent, "created_by": args.created_by,
        "start_date": args.since, "end_date": args.until, "search": args.search,
    }.items() if v}
    flt = ExecutionFilter.from_query(query)
    if args.stats:
        stats = history.execution_stats(flt)
        if args.json:
            print_json(stats)
        else:
            keys = ["total", "pending", "started", "success", "failure", "retry", "revoked"]
            print_table(keys, [[stats[k] for k in keys]])
        return 0
    page = history.query_executions(flt, limit=args.limit)
    return _print_executions(page.items, args.json)


def _print_executions(items: list[Any], as_json: bool) -> int:
    if as_json:
        print_json([e.to_api() for e in items])
        return 0
    print_table(
        ["id", "task_id", "task_name", "module", "status", "device", "attempt", "created",
         "duration", "error"],
        [[e.id, e.task_id, e.task_name, e.module, e.status.value, e.device_serial, e.attempt,
          short_time(iso(e.created_at)),
          f"{e.duration:.1f}s" if e.duration is not None else None, e.error]
         for e in items],
    )
    return 0


def cmd_locks(args: argparse.Namespace) -> int:
    from app.store import locks

    if args.release:
        released = locks.force_release(args.release, actor=args.actor, reason=args.reason)
        if released is None:
            raise CliError(f"no lock named {args.release!r}")
        print(f"released {args.release} (was held by {released.owner})")
        return 0
    records = locks.list_locks()
    if args.json:
        print_json([r.to_api() for r in records])
        return 0
    print_table(["name", "holder", "owner", "expires in", "note"],
                [[r.name, r.holder_kind.value, r.owner, f"{r.remaining():.0f}s", r.note]
                 for r in records])
    return 0


COMMANDS = {
    ("task", "add"): cmd_task_add,
    ("task", "list"): cmd_task_list,
    ("task", "cancel"): cmd_task_cancel,
    ("task", "retry"): cmd_task_retry,
    ("history", None): cmd_history,
    ("locks", None): cmd_locks,
}

__all__ = ["COMMANDS", "add_parsers", "specs_from_file"]
