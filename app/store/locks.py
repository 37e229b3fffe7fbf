"""Named leases ("locks"): at most one owner per name until the lease expires.

A lock row is *held* while ``expires_at > now``; from ``expires_at`` on it is
free and the next ``acquire`` takes it over. Every change is one conditional
statement (``INSERT … ON CONFLICT DO NOTHING`` or ``UPDATE … WHERE``) whose
row count says whether it won, so two processes or two workstations racing on
the same name cannot both win, on SQLite and PostgreSQL alike. Only the owner
token releases or renews a lock, so a holder whose lease lapsed can never free
or extend the lock somebody else acquired since (reference 001 had no token).
"""

from __future__ import annotations

import hashlib

from app.core.clock import now as clock_now
from app.core.enums import HolderKind
from app.core.errors import ValidationError
from app.core.records import LockRecord
from app.store.audit import audit
from app.store.db import database_proxy
from app.store.models import Lock

DEFAULT_TTL_S = 3600.0
MAX_TTL_S = 366 * 86400.0
MAX_NAME = 255
MAX_OWNER = 128
MAX_NOTE = 1000
# Reference 001: parameter values longer than this are replaced by an MD5 prefix.
MAX_PARAM_VALUE = 200


def lock_name(base: str, param: str | None = None, value: str | None = None) -> str:
    """Build a lock name: ``base`` or ``base:param=value``.

    Values longer than 200 characters are replaced by the first 16 hex digits of
    their MD5, as the reference does, so any value yields a bounded name.

    Raises:
        ValidationError: only one of ``param``/``value`` given, or an invalid result.
    """
    if (param is None) != (value is None):
        raise ValidationError("a lock parameter needs both a name and a value", field="name")
    if param is None or value is None:
        return validate_name(base)
    if len(value) > MAX_PARAM_VALUE:
        value = hashlib.md5(value.encode("utf-8"), usedforsecurity=False).hexdigest()[:16]
    return validate_name(f"{base}:{param}={value}")


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid lock name (1..255 printable, no edge spaces)."""
    if not isinstance(name, str) or not name:
        raise ValidationError("a lock name is required", field="name")
    if len(name) > MAX_NAME:
        raise ValidationError(f"lock name longer than {MAX_NAME} characters", field="name")
    if not name.isprintable() or name != name.strip():
        raise ValidationError(
            f"invalid lock name {name!r}: printable characters, no spaces at the ends",
            field="name",
        )
    return name


def acquire(
    name: str,
    owner: str,
    *,
    holder_kind: HolderKind = HolderKind.TASK,
    ttl_s: float = DEFAULT_TTL_S,
    note: str = "",
    now: float | None = None,
) -> LockRecord | None:
    """Take ``name`` for ``owner`` if it is free or expired; refresh it if already ours.

    Returns:
        The lock as now stored, or ``None`` when another owner holds it.
    """
    name = validate_name(name)
    owner = _validate_owner(owner)
    ttl_s = _validate_ttl(ttl_s)
    try:
        holder_kind = HolderKind(holder_kind)
    except ValueError:
        raise ValidationError(f"invalid holder kind {holder_kind!r}", field="holder_kind") from None
    if len(note) > MAX_NOTE:
        raise ValidationError(f"note longer than {MAX_NOTE} characters", field="note")
    at = clock_now() if now is None else now
    expires = at + ttl_s
    with database_proxy.atomic():
        refreshed = (
            Lock.update(expires_at=expires, heartbeat_at=at, note=note, holder_kind=holder_kind)
            .where((Lock.name == name) & (Lock.owner == owner) & (Lock.expires_at > at))
            .execute()
        )
        if not refreshed:
            taken_over = (
                Lock.update(
                    owner=owner,
                    holder_kind=holder_kind,
                    acquired_at=at,
                    expires_at=expires,
                    heartbeat_at=at,
                    note=note,
                )
                .where((Lock.name == name) & (Lock.expires_at <= at))
                .execute()
            )
            if not taken_over:
                inserted = (
                    Lock.insert(
                        name=name,
                        owner=owner,
                        holder_kind=holder_kind,
                        acquired_at=at,
                        expires_at=expires,
                        heartbeat_at=at,
                        note=note,
                    )
                    .on_conflict_ignore()
                    .as_rowcount()
                    .execute()
                )
                if not inserted:
                    return None
        row = Lock.get_by_id(name)
    return _record(row)


def renew(name: str, owner: str, *, ttl_s: float = DEFAULT_TTL_S, now: float | None = None) -> bool:
    """Extend our lease to ``now + ttl_s`` (the heartbeat).

    Returns:
        False when the lock is not ours or has already expired: the lease
        lapsed, and the holder must stop or acquire again.
    """
    ttl_s = _validate_ttl(ttl_s)
    at = clock_now() if now is None else now
    with database_proxy.atomic():
        count = (
            Lock.update(expires_at=at + ttl_s, heartbeat_at=at)
            .where((Lock.name == name) & (Lock.owner == owner) & (Lock.expires_at > at))
            .execute()
        )
    return bool(count)


def release(name: str, owner: str) -> bool:
    """Delete the lock if ``owner`` holds it; a late release never frees another's lock."""
    with database_proxy.atomic():
        count = Lock.delete().where((Lock.name == name) & (Lock.owner == owner)).execute()
    return bool(count)


def force_release(
    name: str, *, actor: str, reason: str = "", now: float | None = None
) -> LockRecord | None:
    """An operator frees a lock whoever holds it; the release is audited.

    Returns:
        The lock that was removed, or ``None`` if there was none (nothing audited).
    """
    if not actor.strip():
        raise ValidationError("actor is required", field="actor")
    at = clock_now() if now is None else now
    with database_proxy.atomic():
        row = Lock.get_or_none(Lock.name == name)
        if row is None:
            return None
        record = _record(row)
        # Delete exactly the holder we audit: if the lock changed hands since the
        # read (possible on PostgreSQL), nothing is freed and the caller sees None.
        deleted = (
            Lock.delete()
            .where((Lock.name == name) & (Lock.owner == record.owner))
            .execute()
        )
        if not deleted:
            return None
        audit(
            actor,
            "lock.force_release",
            name,
            {
                "owner": record.owner,
                "holder_kind": record.holder_kind.value,
                "acquired_at": record.acquired_at,
                "expires_at": record.expires_at,
                "expired": record.expires_at <= at,
                "reason": reason,
            },
            now=at,
        )
    return record


def get_lock(name: str, *, now: float | None = None) -> LockRecord | None:
    """The lock if it is held now; ``None`` when absent or expired."""
    at = clock_now() if now is None else now
    row = Lock.get_or_none((Lock.name == name) & (Lock.expires_at > at))
    return None if row is None else _record(row)


def list_locks(*, include_expired: bool = False, now: float | None = None) -> list[LockRecord]:
    """Locks ordered by name; expired rows only when asked for."""
    query = Lock.select().order_by(Lock.name)
    if not include_expired:
        at = clock_now() if now is None else now
        query = query.where(Lock.expires_at > at)
    return [_record(row) for row in query]


def purge_expired(*, now: float | None = None) -> int:
    """Delete expired rows (they are already free; this only tidies the table)."""
    at = clock_now() if now is None else now
    with database_proxy.atomic():
        return int(Lock.delete().where(Lock.expires_at <= at).execute())


def _record(row: Lock) -> LockRecord:
    return LockRecord(
        name=str(row.name),
        owner=str(row.owner),
        holder_kind=HolderKind(row.holder_kind),
        acquired_at=float(row.acquired_at),
        expires_at=float(row.expires_at),
        heartbeat_at=float(row.heartbeat_at),
        note=str(row.note or ""),
    )


def _validate_owner(owner: str) -> str:
    if not isinstance(owner, str) or not owner.strip():
        raise ValidationError("a lock owner is required", field="owner")
    if len(owner) > MAX_OWNER:
        raise ValidationError(f"lock owner longer than {MAX_OWNER} characters", field="owner")
    return owner


def _validate_ttl(ttl_s: float) -> float:
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int | float):
        raise ValidationError("ttl_s must be a number of seconds", field="ttl_s")
    value = float(ttl_s)
    if not 0 < value <= MAX_TTL_S:  # also rejects NaN
        raise ValidationError(f"ttl_s must be in (0, {MAX_TTL_S:.0f}]", field="ttl_s")
    return value
