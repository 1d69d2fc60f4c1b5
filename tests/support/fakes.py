"""HTTP-level fakes for the canary tests: the pods API, worker metrics, a Pushgateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Recorded:
    """Every request a fake received: (method, path with query, body)."""

    requests: list[tuple[str, str, str]] = field(default_factory=list)


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def recording(app: web.Application, recorded: Recorded) -> web.Application:
    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.text() if request.can_read_body else ""
        recorded.requests.append((request.method, request.path_qs, body))
        response: web.StreamResponse = await handler(request)
        return response

    app.middlewares.append(record)
    return app


def pods_api(pods: list[dict[str, Any]], recorded: Recorded) -> web.Application:
    """``GET /api/v1/namespaces/{ns}/pods`` (with labelSelector) and
    ``DELETE /api/v1/namespaces/{ns}/pods/{name}``, like the API server answers them."""
    app = recording(web.Application(), recorded)

    async def list_pods(request: web.Request) -> web.Response:
        return web.json_response({"kind": "PodList", "apiVersion": "v1",
                                  "metadata": {"resourceVersion": "1"}, "items": pods})

    async def delete_pod(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        for pod in pods:
            if pod["metadata"]["name"] == name:
                pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
                return web.json_response(pod)
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "reason": "NotFound", "code": 404}, status=404)

    app.router.add_get("/api/v1/namespaces/{ns}/pods", list_pods)
    app.router.add_delete("/api/v1/namespaces/{ns}/pods/{name}", delete_pod)
    return app


def pod(name: str, metrics_port: int, *, phase: str = "Running",
        terminating: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": "cargo",
                                "labels": {"app.kubernetes.io/component": "worker"}}
    if terminating:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": metadata,
            "spec": {"containers": [{"name": "worker", "image": "cargo",
                                     "ports": [{"name": "metrics",
                                                "containerPort": metrics_port}]}]},
            "status": {"phase": phase, "podIP": "127.0.0.1"}}


def worker_metrics(heartbeat: float, connected: bool) -> web.Application:
    text = ("# TYPE cargo_worker_heartbeat_timestamp_seconds gauge\n"
            f"cargo_worker_heartbeat_timestamp_seconds {heartbeat}\n"
            "# TYPE cargo_worker_broker_connected gauge\n"
            f"cargo_worker_broker_connected {1 if connected else 0}\n")

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=text, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app


def pushgateway(recorded: Recorded) -> web.Application:
    """Accepts pushes (PUT/POST /metrics/job/...) and records them."""
    app = recording(web.Application(), recorded)

    async def push(request: web.Request) -> web.Response:
        return web.Response(status=200)

    app.router.add_route("PUT", "/metrics/job/{job}", push)
    app.router.add_route("POST", "/metrics/job/{job}", push)
    return app
