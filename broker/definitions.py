"""The topology as a RabbitMQ definitions document (what the management UI imports)."""

from __future__ import annotations

from typing import Any

from broker.topology import Topology


def export_definitions(topology: Topology, vhost: str | None = None) -> dict[str, Any]:
    """Definitions JSON for the topology.

    With ``vhost=None`` the document is vhost-scoped (import it with
    ``POST /api/definitions/{vhost}`` or the UI's per-vhost import); with a
    vhost, every object names it, as in a full-broker export.
    """
    scope: dict[str, Any] = {} if vhost is None else {"vhost": vhost}
    exchanges = [
        {"name": ex.name, "type": ex.type, "durable": ex.durable, "auto_delete": False,
         "internal": False, "arguments": dict(ex.arguments), **scope}
        for ex in topology.exchanges
    ]
    queues = [
        {"name": q.name, "durable": q.durable, "auto_delete": False,
         "arguments": dict(q.arguments), **scope}
        for q in topology.queues
    ]
    bindings = [
        {"source": b.exchange, "destination": q.name, "destination_type": "queue",
         "routing_key": b.routing_key, "arguments": {}, **scope}
        for q in topology.queues
        for b in q.bindings
    ] + [
        {"source": b.source, "destination": b.destination, "destination_type": "exchange",
         "routing_key": b.routing_key, "arguments": {}, **scope}
        for b in topology.exchange_bindings
    ]
    doc: dict[str, Any] = {"exchanges": exchanges, "queues": queues, "bindings": bindings}
    if vhost is not None:
        doc["vhosts"] = [{"name": vhost}]
    return doc
