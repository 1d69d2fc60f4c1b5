"""Task ids are random RFC 4122 version-4 UUIDs, never repeated."""

from __future__ import annotations

import uuid

from gateway.task_ids import TaskIds


def test_task_ids_are_version_4_uuids_in_canonical_form() -> None:
    ids = TaskIds(batch=4)
    for _ in range(20):  # across several refills of the pool
        text = ids()
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text


def test_task_ids_do_not_repeat() -> None:
    ids = TaskIds(batch=3)
    many = [ids() for _ in range(10_000)]
    assert len(set(many)) == len(many)
