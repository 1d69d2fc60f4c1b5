"""Optional bearer-token auth (on when ``CARGO_AUTH_TOKEN`` is set)."""

from __future__ import annotations

import hmac

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from broker.settings import TokenSettings
from gateway.errors import ApiError
from gateway.keys import SETTINGS_KEY

log = structlog.get_logger(__name__)

# Probes and scrapes come from the cluster itself, without the clients' token.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})
# The web console's shell and assets (/ui, /ui/..., gateway.console_routes), deliberately
# open: they hold no data, and a browser must load them before it can ask its user for
# the token. Every data call the console then makes (REST, /ws) is checked like any other.
CONSOLE_PATH = "/ui"


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path == CONSOLE_PATH or path.startswith(CONSOLE_PATH + "/")


def check_token(request: web.Request, *, allow_query: bool = False) -> None:
    expected = request.app[SETTINGS_KEY].auth_token
    if expected is None:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    given = token.strip() if scheme.lower() == "bearer" else ""
    if not given and allow_query:
        given = request.query.get("token", "")
    # Constant time; surrogatepass: a header's undecodable bytes arrive as lone
    # surrogates (surrogateescape), which a plain encode() refuses with a 500.
    if not given or not hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                                            expected.encode()):
        raise ApiError(401, "unauthorized", "missing or wrong bearer token",
                       headers={"WWW-Authenticate": 'Bearer realm="cargo"'})


def warn_if_open(settings: TokenSettings) -> None:
    """Say so at start when the API runs without auth: nobody should find out by accident."""
    if settings.auth_token is None:
        log.warning("gateway.auth_disabled",
                    detail="CARGO_AUTH_TOKEN is not set: the REST and WebSocket API is open "
                           "to anyone who can reach this gateway")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # /ws checks the token itself, because browsers cannot set headers on it.
    if not is_open(request.path) and request.path != "/ws":
        check_token(request)
    return await handler(request)
