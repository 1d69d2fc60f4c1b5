"""The original design's submit path, as the peer Cargo's gateway is measured against.

A FastAPI app whose ``POST /distance/`` is a plain (sync) ``def`` endpoint that
calls Celery's ``send_task`` — FastAPI runs it in its thread pool, and Celery
publishes through kombu/py-amqp on a pooled connection. That is the original
design; Celery's defaults are kept (producer pool of ``broker_pool_limit`` = 10
connections, no ``mandatory`` flag), with two changes that make the comparison
like for like:

* publisher confirms (``broker_transport_options={"confirm_publish": True}``):
  ``send_task`` returns only after RabbitMQ confirmed the message, as the
  gateway answers 202 only after a confirm;
* the exchange, queue and queue arguments come from ``broker.topology`` via
  ``broker.declare.celery_routing``, so the message lands in the very queue
  the gateway publishes to, declared identically.

``BENCH_PEER_CONFIRM=0`` turns confirms off — the original design as it ran,
where ``send_task`` returns once the message is written to the socket — for an
informational row only: that peer can lose messages silently, so it is not what
the gateway is compared with.

Serve it with one process::

    RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5672/ \\
        uvicorn bench.peers.fastapi_celery:create_app --factory --workers 1 --log-level warning
"""

from __future__ import annotations

import os

import celery
from fastapi import FastAPI

from broker.declare import celery_routing
from broker.settings import Settings, load_settings
from broker.topology import build_topology


def create_celery(settings: Settings, confirm: bool = True) -> celery.Celery:
    topology = build_topology(settings)
    app = celery.Celery("cargo-bench-peer", set_as_current=False)
    app.conf.update(
        broker_url=settings.rabbitmq_url,
        broker_transport_options={"confirm_publish": confirm},
        **celery_routing(topology),
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
    )
    return app


def create_app(settings: Settings | None = None) -> FastAPI:
    """The ASGI app (``uvicorn --factory``); reads the environment only when called."""
    settings = settings or load_settings()
    celery_app = create_celery(settings, confirm=os.environ.get("BENCH_PEER_CONFIRM") != "0")
    queue = settings.task_queue
    app = FastAPI(title="original design: FastAPI + Celery send_task")

    @app.post("/distance/", status_code=202)
    def distance(x: float, y: float) -> dict[str, str]:
        result = celery_app.send_task("calculate_distance", args=[x, y], queue=queue)
        return {"task_id": result.id}

    return app
