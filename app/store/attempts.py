"""Opening attempts: the execution rows a start writes.

Shared by ``hotpath.start_many`` (claimed -> running) and by the claim that starts
host tasks at once (``claim.claim_and_start``, pending -> running), so that both
number, fill and return executions the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import peewee

from app.core.enums import ExecStatus, TaskState
from app.core.jsontext import encode_json
from app.core.records import ExecutionRecord, TaskRecord
from app.store.executions import execution_record
from app.store.hotsql import INSERT_COLUMNS, Sql
from app.store.taskrows import Row, task_record

StartResult = tuple[TaskRecord, ExecutionRecord]


def open_attempts(db: peewee.Database, sql: Sql, owner: str, rows: Sequence[Row],
                  at: float) -> list[StartResult]:
    """Insert one STARTED execution per task row and return ``(task, execution)``.

    ``rows`` are tasks whose row was just written as running with ``attempts + 1``
    (the dicts still hold the old count, which is updated here); each needs
    ``last_attempt`` (its highest execution number, or None) and ``payload_json``
    (its stored payload text).
    """
    new_rows = [execution_row(row, owner, at) for row in rows]
    worker = encode_json({"worker": owner})
    ids = sql.insert_executions(db, [insert_values(new, row, worker)
                                     for new, row in zip(new_rows, rows, strict=True)])
    out: list[StartResult] = []
    for row, new in zip(rows, new_rows, strict=True):
        row.update({"state": TaskState.RUNNING.value, "attempts": int(row["attempts"]) + 1,
                    "updated_at": at, "progress_percent": None, "progress_message": None})
        out.append((task_record(row), execution_record({**new, "id": ids[row["uid"]]})))
    return out


def execution_row(row: Row, owner: str, at: float) -> Row:
    # Executions are numbered by the rows that exist: an attempt refunded by
    # ``interrupt`` still has its row, so the next one gets the next number.
    payload = row["payload"]
    return {
        "task_id": row["uid"], "task_name": row["kind"], "module": row["queue"],
        "status": ExecStatus.STARTED.value, "attempt": int(row["last_attempt"] or 0) + 1,
        "device_serial": row["device_serial"], "agent_uuid": row["agent_uuid"],
        "created_by": row["created_by"] or "", "args": [],
        "kwargs": dict(payload) if isinstance(payload, dict) else {},
        "metadata": {"worker": owner}, "created_at": at, "started_at": at,
        "finished_at": None, "timeout_s": row["timeout_s"],
        "result": None, "error": None, "traceback": None,
    }


def insert_values(new: Row, task: Row, worker_json: str) -> list[Any]:
    """``new`` as INSERT values; JSON as text without encoding it again: the payload
    text is copied from the task row (it is the same compact JSON)."""
    kwargs = task["payload_json"] if isinstance(task["payload"], dict) else "{}"
    texts = {"args": "[]", "kwargs": kwargs, "metadata": worker_json}
    return [texts[c] if c in texts else new[c] for c in INSERT_COLUMNS]
