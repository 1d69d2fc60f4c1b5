"""A ``/metrics`` HTTP endpoint for a process's own Prometheus registry.

The worker's main process and the bridge each serve their registry on a port
of their own (the gateway serves its registry from aiohttp instead). Starting
is idempotent and a busy port is logged, not fatal: a process that cannot be
scraped still does its work, and the missing scrape target raises its own alert.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

log = logging.getLogger(__name__)


class MetricsEndpoint:
    def __init__(self, registry: CollectorRegistry, what: str) -> None:
        self._registry = registry
        self._what = what  # "worker", "bridge": for the log lines
        self._server: Any = None

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:  # scraped in-cluster
        """Serve ``/metrics`` on ``port`` (0: not at all)."""
        if port == 0 or self._server is not None:
            return
        try:
            self._server, _thread = start_http_server(port, addr, registry=self._registry)
        except OSError as exc:
            log.error("%s metrics not served: cannot listen on port %d: %s", self._what, port, exc)
            return
        log.info("%s metrics on http://%s:%d/metrics", self._what, addr, port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
