"""``GET /ui``: Cargo's web console, a static shell the gateway serves from ``gateway/console``.

The shell and its assets hold no data: they are served without the token (the auth
middleware's open paths), and every data call the console makes from the browser goes
to the REST and WebSocket API with the token, like any other client's. The files are
read once when the app is built (they ship inside the package) and answered with a
strong ETag, so a browser revalidates cheaply and picks up a new release at once.

Every response carries a strict Content-Security-Policy: scripts, styles and
connections from this origin only (the WebSocket too), nothing inline, no frames.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from aiohttp import web

from gateway.errors import ApiError

PACKAGE = "gateway.console"
SHELL = "index.html"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# A Host header fit to be named in the policy (name or address, optional port); anything
# else leaves connect-src at 'self', which Chromium and Firefox also match for ws: and wss:.
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


class ConsoleAssets:
    """The console's files by their path under ``/ui/`` (``index.html`` is ``/ui`` itself)."""

    def __init__(self, assets: dict[str, Asset]) -> None:
        if SHELL not in assets:
            raise ValueError(f"the console has no {SHELL}")
        self._assets = assets

    @classmethod
    def from_package(cls) -> ConsoleAssets:
        assets: dict[str, Asset] = {}
        _collect(resources.files(PACKAGE), "", assets)
        return cls(assets)

    def get(self, path: str) -> Asset | None:
        return self._assets.get(path)

    @property
    def paths(self) -> list[str]:
        return sorted(self._assets)


def _collect(folder: Traversable, prefix: str, into: dict[str, Asset]) -> None:
    for entry in folder.iterdir():
        if entry.is_dir():
            _collect(entry, f"{prefix}{entry.name}/", into)
            continue
        suffix = entry.name[entry.name.rfind("."):] if "." in entry.name else ""
        content_type = CONTENT_TYPES.get(suffix)
        if content_type is None:  # __init__.py and the like are not the console's
            continue
        body = entry.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        into[prefix + entry.name] = Asset(body, content_type, etag)


def content_security_policy(host: str | None) -> str:
    connect = ["'self'"]
    if host and _HOST.fullmatch(host):
        # 'self' covers ws: in CSP 3, but not in every browser yet: name it as well.
        connect += [f"ws://{host}", f"wss://{host}"]
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        f"connect-src {' '.join(connect)}",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def _respond(request: web.Request, asset: Asset) -> web.Response:
    headers = {
        "Content-Security-Policy": content_security_policy(request.host),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        # Revalidate every time: a release's new files are used at once, unchanged ones cost a 304.
        "Cache-Control": "no-cache",
        "ETag": asset.etag,
    }
    if asset.etag in {tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")}:
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = asset.content_type
    return web.Response(body=asset.body, headers=headers)


def console_routes(assets: ConsoleAssets) -> list[web.RouteDef]:
    """The console's routes over ``assets``: ``/ui`` (the shell), ``/ui/`` (back to
    ``/ui``) and ``/ui/{path}`` (its scripts, styles and icon)."""
    shell = assets.get(SHELL)
    assert shell is not None

    async def console_shell(request: web.Request) -> web.Response:
        return _respond(request, shell)

    async def console_slash(request: web.Request) -> web.Response:
        # Relative: the shell's asset and API URLs are relative to /ui, which keeps
        # the console working behind a reverse proxy's path prefix.
        raise web.HTTPPermanentRedirect(location="../ui")

    async def console_asset(request: web.Request) -> web.Response:
        path = request.match_info["path"]
        asset = assets.get(path) if path != SHELL else None
        if asset is None:
            raise ApiError(404, "not_found", f"the console has no file {path!r}")
        return _respond(request, asset)

    return [
        web.get("/ui", console_shell),
        web.get("/ui/", console_slash),
        web.get("/ui/{path:.+}", console_asset),
    ]
