"""Generated task ids are version-4 UUIDs in hex, and do not repeat."""

from __future__ import annotations

import uuid

from app.core.ids import new_task_uid


def test_new_task_uids_are_distinct_version_4_uuids_in_hex() -> None:
    uids = [new_task_uid() for _ in range(5000)]
    assert len(set(uids)) == 5000
    for uid in uids[:500]:
        parsed = uuid.UUID(hex=uid)
        assert parsed.hex == uid and len(uid) == 32
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
