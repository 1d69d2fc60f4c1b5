"""broker.catalog and broker.catalog_reader without a broker: which announcements are
applied, how liveness and the rolling-deploy rule decide what a gateway accepts,
and that nothing a stream message holds can change the catalog unless it is valid."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from broker.arguments import InvalidArguments
from broker.catalog import (
    MAX_ANNOUNCEMENT_BYTES,
    AnnouncedTask,
    Announcement,
    Catalog,
    InvalidAnnouncement,
    TaskLimits,
    decode_announcement,
)
from broker.catalog_reader import CatalogMetrics, CatalogReader

VHOST = "unit"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
NUMBER_X = {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"],
            "additionalProperties": False, "x-cargo-positional": ["x"]}
BOUNDED_X = {"type": "object", "properties": {"x": {"type": "number", "maximum": 10}},
             "required": ["x"], "additionalProperties": False, "x-cargo-positional": ["x"]}


def task(name: str = "acme.resize", schema: dict[str, Any] | None = None,
         queue: str = "cargo", doc: str | None = None) -> AnnouncedTask:
    return AnnouncedTask(name=name, queue=queue, schema=schema or NUMBER_X, doc=doc,
                         limits=TaskLimits(time_limit=60, memory_limit_mb=128, max_retries=1))


def announcement(worker: str = "w1", tasks: tuple[AnnouncedTask, ...] = (),
                 at: datetime = T0, started: datetime = T0, ttl: float = 45,
                 withdrawn: bool = False, vhost: str = VHOST,
                 queues: tuple[str, ...] = ()) -> Announcement:
    return Announcement(worker=worker, vhost=vhost, started_at=started, announced_at=at,
                        ttl=ttl, tasks=tasks, withdrawn=withdrawn, queues=queues)


def test_an_announced_task_is_offered_until_its_workers_announcement_expires() -> None:
    catalog = Catalog(VHOST)
    assert catalog.apply(announcement(tasks=(task(),)))
    assert catalog.get("acme.resize", T0 + timedelta(seconds=44)) is not None
    assert catalog.get("acme.resize", T0 + timedelta(seconds=46)) is None


def test_a_withdrawal_removes_the_workers_tasks_at_once() -> None:
    catalog = Catalog(VHOST)
    catalog.apply(announcement(tasks=(task(),)))
    catalog.apply(announcement(at=T0 + timedelta(seconds=1), withdrawn=True))
    assert catalog.get("acme.resize", T0 + timedelta(seconds=2)) is None


def test_a_task_some_worker_on_its_queue_does_not_offer_names_that_worker_as_missing() -> None:
    catalog = Catalog(VHOST)
    catalog.apply(announcement("new", tasks=(task(), task("old.task")), queues=("cargo",)))
    catalog.apply(announcement("old", tasks=(task("old.task"),), queues=("cargo",)))
    # A worker on another queue, and an announcer consuming nothing, do not count.
    catalog.apply(announcement("elsewhere", tasks=(), queues=("reports",)))
    catalog.apply(announcement("announcer", tasks=(task("old.task"),)))
    entry = catalog.get("acme.resize", T0)
    assert entry is not None
    assert entry.missing == ("old",)
    assert entry.to_json()["missing_on"] == ["old"]
    old = catalog.get("old.task", T0)
    assert old is not None
    assert old.missing == ()
    assert "missing_on" not in old.to_json()
    catalog.apply(announcement("old", at=T0 + timedelta(seconds=1), withdrawn=True))
    entry = catalog.get("acme.resize", T0 + timedelta(seconds=2))
    assert entry is not None
    assert entry.missing == ()


def test_an_older_announcement_arriving_late_changes_nothing() -> None:
    catalog = Catalog(VHOST)
    catalog.apply(announcement(tasks=(task(),), at=T0 + timedelta(seconds=10)))
    assert not catalog.apply(announcement(at=T0, withdrawn=True))
    assert catalog.get("acme.resize", T0 + timedelta(seconds=11)) is not None


def test_a_rolling_deploy_accepts_only_what_every_live_schema_accepts() -> None:
    catalog = Catalog(VHOST)
    catalog.apply(announcement("old", (task(schema=NUMBER_X, queue="cargo"),)))
    catalog.apply(announcement("new", (task(schema=BOUNDED_X, queue="resize", doc="new"),),
                               started=T0 + timedelta(seconds=5), at=T0 + timedelta(seconds=5)))
    entry = catalog.get("acme.resize", T0 + timedelta(seconds=6))
    assert entry is not None
    entry.validate([5], {})
    with pytest.raises(InvalidArguments) as raised:
        entry.validate([50], {})  # the old schema takes it; the new one does not
    assert raised.value.errors == [{"loc": ["args", 0],
                                    "msg": "Input should be less than or equal to 10"}]
    # Newest worker wins queue and doc; the schema shown is what both accept.
    assert (entry.queue, entry.task.doc) == ("resize", "new")
    doc = entry.to_json()
    assert doc["schema"] == {"allOf": [NUMBER_X, BOUNDED_X]}
    assert doc["workers"] == 2


def test_after_one_side_of_a_rolling_deploy_withdraws_the_others_rule_alone_applies() -> None:
    catalog = Catalog(VHOST)
    catalog.apply(announcement("old", (task(schema=NUMBER_X),)))
    catalog.apply(announcement("new", (task(schema=BOUNDED_X, queue="resize"),),
                               started=T0 + timedelta(seconds=5), at=T0 + timedelta(seconds=5)))
    catalog.apply(announcement("new", at=T0 + timedelta(seconds=6), withdrawn=True))
    entry = catalog.get("acme.resize", T0 + timedelta(seconds=7))
    assert entry is not None
    entry.validate([50], {})
    assert entry.queue == "cargo"
    assert entry.to_json()["schema"] == NUMBER_X


def valid_body(**changes: Any) -> bytes:
    doc = json.loads(announcement(tasks=(task(),)).encode())
    doc.update(changes)
    return json.dumps(doc).encode()


def bad_schema_body(schema: Any) -> bytes:
    doc = json.loads(valid_body())
    doc["tasks"][0]["schema"] = schema
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\xfe garbage", "malformed"),
        (b"[1, 2, 3]", "malformed"),
        (b'{"type": "cargo.catalog"}', "malformed"),
        (valid_body(version=2), "malformed"),
        (valid_body(surprise=True), "malformed"),
        (valid_body(announced_at="2026-01-01T12:00:00"), "malformed"),
        (valid_body(vhost="someone-else"), "foreign_vhost"),
        (bad_schema_body({"type": "object", "properties": {
            "x": {"$ref": "https://example.com/schema.json"}}}), "invalid_schema"),
        (bad_schema_body({"type": "object", "properties": {"x": {"type": 12}}}),
         "invalid_schema"),
        (b" " * (MAX_ANNOUNCEMENT_BYTES + 1), "too_large"),
        (b"[" * 100_000, "malformed"),
    ],
    ids=["garbage", "wrong-shape", "missing-fields", "unknown-version", "extra-field",
         "naive-time", "foreign-vhost", "remote-ref", "bad-schema", "too-large", "deep-nesting"],
)
def test_an_announcement_a_gateway_must_not_apply_is_refused_with_its_reason(
        body: bytes, reason: str) -> None:
    with pytest.raises(InvalidAnnouncement) as raised:
        decode_announcement(body, VHOST)
    assert raised.value.reason == reason


def test_a_valid_announcement_decodes_to_what_was_announced() -> None:
    assert decode_announcement(valid_body(), VHOST) == announcement(tasks=(task(),))


def test_the_reader_applies_valid_announcements_and_counts_and_skips_everything_else() -> None:
    registry = CollectorRegistry()
    catalog = Catalog(VHOST)
    reader = CatalogReader(catalog, CatalogMetrics(registry))
    now = datetime.now(UTC)
    good = announcement(tasks=(task(),), at=now, started=now).encode()
    for body in (b"garbage", valid_body(vhost="other"), good,
                 bad_schema_body({"type": "string"})):
        reader.handle(body)
    assert [e.name for e in catalog] == ["acme.resize"]
    assert reader.rejected == 3
    value = registry.get_sample_value
    assert value("cargo_catalog_announcements_rejected_total", {"reason": "malformed"}) == 1
    assert value("cargo_catalog_announcements_rejected_total", {"reason": "foreign_vhost"}) == 1
    assert value("cargo_catalog_announcements_rejected_total",
                 {"reason": "invalid_schema"}) == 1
    assert value("cargo_catalog_tasks") == 1


def test_the_reader_is_caught_up_on_its_own_marker_and_ignores_other_readers_markers() -> None:
    catalog = Catalog(VHOST)
    reader = CatalogReader(catalog)
    other = CatalogReader(catalog)
    reader.handle(json.dumps({"type": "cargo.catalog.marker", "id": other._marker}).encode())
    assert not reader.caught_up.is_set()
    reader.handle(json.dumps({"type": "cargo.catalog.marker", "id": reader._marker}).encode())
    assert reader.caught_up.is_set()
    assert reader.rejected == 0


def test_a_schema_announced_again_is_not_checked_again_but_a_refused_one_always_is() -> None:
    from broker.catalog import compiled_schema

    body = announcement(tasks=(task(schema=BOUNDED_X),)).encode()
    decode_announcement(body, VHOST)
    hits = compiled_schema.cache_info().hits
    decode_announcement(body, VHOST)
    assert compiled_schema.cache_info().hits == hits + 1
    bad = dict(BOUNDED_X, properties={"x": {"type": "no-such-type"}})
    for _ in range(2):
        with pytest.raises(InvalidAnnouncement) as refused:
            decode_announcement(announcement(tasks=(task(schema=bad),)).encode(), VHOST)
        assert refused.value.reason == "invalid_schema"


def test_problems_are_reported_in_the_order_of_the_announced_parameters() -> None:
    schema = {"type": "object", "properties": {"width": {"type": "integer"},
                                               "mode": {"type": "string"}},
              "required": ["width", "mode"], "additionalProperties": False,
              "x-cargo-positional": ["width", "mode"]}
    catalog = Catalog(VHOST)
    catalog.apply(decode_announcement(announcement(tasks=(task(schema=schema),)).encode(),
                                      VHOST))
    entry = catalog.get("acme.resize", T0)
    assert entry is not None
    with pytest.raises(InvalidArguments) as raised:
        entry.validate(["wide", 3], {})
    assert [e["loc"] for e in raised.value.errors] == [["args", 0], ["args", 1]]
