"""Typed application keys: every resource the gateway app holds, by name and type."""

from __future__ import annotations

from aiohttp import web

from broker.announcer import Announcer
from broker.catalog import Catalog
from broker.catalog_reader import CatalogReader
from broker.connection import BrokerConnection
from broker.publisher import Publisher
from broker.settings import GatewaySettings
from broker.topology import Topology
from gateway.deadletters import DeadLetters
from gateway.events_reader import EventsReader
from gateway.hub import Hub
from gateway.idempotency import IdempotencyKeys
from gateway.metrics import GatewayMetrics
from gateway.queue_stats import QueueStats
from gateway.revoker import Revoker
from gateway.task_ids import TaskIds

SETTINGS_KEY = web.AppKey("settings", GatewaySettings)
TOPOLOGY_KEY = web.AppKey("topology", Topology)
METRICS_KEY = web.AppKey("metrics", GatewayMetrics)
HUB_KEY = web.AppKey("hub", Hub)
BROKER_KEY = web.AppKey("broker", BrokerConnection)
PUBLISHER_KEY = web.AppKey("publisher", Publisher)
TASK_IDS_KEY = web.AppKey("task_ids", TaskIds)
# Celery's ``origin`` header of this process's messages, computed once.
ORIGIN_KEY = web.AppKey("task_origin", str)
EVENTS_KEY = web.AppKey("events_reader", EventsReader)
# The events stream's own connection (gateway.app: never ahead of publish confirms).
EVENTS_LINK_KEY = web.AppKey("events_link", BrokerConnection)
ANNOUNCER_KEY = web.AppKey("announcer", Announcer)
DEADLETTERS_KEY = web.AppKey("deadletters", DeadLetters)
# The task queues' figures from the management API, shared for a second (GET /queues).
QUEUE_STATS_KEY = web.AppKey("queue_stats", QueueStats)
REVOKER_KEY = web.AppKey("revoker", Revoker)
IDEMPOTENCY_KEY = web.AppKey("idempotency", IdempotencyKeys)
# The live task catalog (broker.catalog), fed by its reader from the catalog stream.
CATALOG_KEY = web.AppKey("catalog", Catalog)
CATALOG_READER_KEY = web.AppKey("catalog_reader", CatalogReader)
