"""Writing the claim's picks: claimed (one UPDATE for a normal claim), or, for the
host's tasks in ``claim_and_start``, straight to running with their executions."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from app.core.enums import TaskState
from app.core.errors import ConflictError
from app.core.jsontext import encode_json
from app.core.records import TaskRecord
from app.store.attempts import StartResult, open_attempts
from app.store.db import is_postgres
from app.store.dialect import current_db
from app.store.hotsql import Sql
from app.store.models import Task
from app.store.taskrows import Row, task_record

if TYPE_CHECKING:
    from app.store.claim import Slot

_UPDATE_BATCH = 1000  # picks written per UPDATE statement
_START_CHUNK = 500  # host tasks started per statement


def mark_claimed(picks: dict[str, list[Row]], slots: list[Slot], owner: str, at: float,
                 expires: float) -> dict[str | None, list[TaskRecord]]:
    """Write every pick in as few UPDATEs as possible (one for a normal claim): the
    device serial / agent uuid of each task is chosen with a CASE on its id."""
    by_key = {slot.key: slot for slot in slots}
    out: dict[str | None, list[TaskRecord]] = {}
    batch: list[tuple[Slot, list[int]]] = []
    size = 0
    for key, rows in picks.items():
        slot = by_key[key]
        changes = {"state": TaskState.CLAIMED.value, "lease_owner": owner,
                   "lease_expires_at": expires, "updated_at": at,
                   "device_serial": slot.serial if slot.is_device else None,
                   "agent_uuid": slot.agent_uuid}
        for row in rows:
            row.update(changes)
        out[key] = [task_record(row) for row in rows]
        batch.append((slot, [row["id"] for row in rows]))
        size += len(rows)
        if size >= _UPDATE_BATCH:
            _write_claims(batch, owner, at, expires)
            batch, size = [], 0
    if batch:
        _write_claims(batch, owner, at, expires)
    return out


def start_host_rows(rows: list[Row], owner: str, at: float, expires: float
                     ) -> list[StartResult]:
    db = current_db()
    sql = Sql.of(db)
    out: list[StartResult] = []
    for begin in range(0, len(rows), _START_CHUNK):
        chunk = rows[begin:begin + _START_CHUNK]
        sql.claim_started(db, [row["id"] for row in chunk], owner, expires, at)
        last = sql.last_attempts(db, [row["uid"] for row in chunk])
        for row in chunk:
            row.update({"lease_owner": owner, "lease_expires_at": expires,
                        "device_serial": None, "agent_uuid": None,
                        "last_attempt": last.get(row["uid"]),
                        "payload_json": encode_json(row["payload"])})
        out += open_attempts(db, sql, owner, chunk, at)
    return out


def _write_claims(batch: list[tuple[Slot, list[int]]], owner: str, at: float,
                  expires: float) -> None:
    db = current_db()
    serials = [(ids, slot.serial) for slot, ids in batch if slot.is_device]
    agents = [(ids, slot.agent_uuid) for slot, ids in batch if slot.agent_uuid is not None]
    ids = [i for _, slot_ids in batch for i in slot_ids]
    params: list[Any] = [TaskState.CLAIMED.value, owner, expires, at]
    for groups in (serials, agents):
        for group_ids, value in groups:
            params += [*group_ids, value]
    params += [*ids, TaskState.PENDING.value]
    shape = (tuple(len(g) for g, _ in serials), tuple(len(g) for g, _ in agents), len(ids))
    cursor = db.execute_sql(  # type: ignore[no-untyped-call]
        claim_update_sql(db.param, is_postgres(db), *shape), params)
    if cursor.rowcount != len(ids):
        # Cannot happen under the locks above; refuse rather than double-claim.
        raise ConflictError("another claim took some of these tasks; try again")


@functools.lru_cache(maxsize=128)
def claim_update_sql(p: str, postgres: bool, serial_groups: tuple[int, ...],
                     agent_groups: tuple[int, ...], n: int) -> str:
    """The claim's UPDATE for picks split in groups (one per device / agent slot);
    written by hand because peewee took milliseconds to build it (CASE over IN lists).
    Parameters: state, owner, expires, now, each group's ids then its value, every id,
    then the state the rows must still be in."""

    def marks(count: int) -> str:
        return ", ".join([p] * count)

    def case(groups: tuple[int, ...]) -> str:
        if not groups:
            return "NULL"
        whens = " ".join(f'WHEN "id" IN ({marks(g)}) THEN {p}' for g in groups)
        return f"CASE {whens} ELSE NULL END"

    state = '"state"' if postgres else '+"state"'  # see dialect.unindexed
    return (f'UPDATE "{Task._meta.table_name}" SET "state" = {p}, "lease_owner" = {p}, '
            f'"lease_expires_at" = {p}, "updated_at" = {p}, '
            f'"device_serial" = {case(serial_groups)}, "agent_uuid" = {case(agent_groups)} '
            f'WHERE "id" IN ({marks(n)}) AND {state} = {p}')
