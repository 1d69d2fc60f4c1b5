"""The gateway's base URL as people type it (``--gateway``, ``CARGO_GATEWAY_URL``), checked.

Without a scheme aiohttp would refuse ``localhost:8000`` with a message about a
"non-HTTP URL"; this says what to type instead. The checks are pure.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from cargoctl.errors import BadInput

SCHEMES = ("http", "https")


def checked_gateway_url(url: str) -> str:
    """``url`` without a trailing slash; a :class:`CliError` (exit 2) when it cannot work."""
    text = url.strip()
    if not text:
        raise _bad("the gateway URL is empty; give one such as http://127.0.0.1:8000")
    if "://" not in text:
        raise _bad(f"gateway URL {url!r} has no scheme: it needs http:// or https:// "
                   f"(for example http://{text.lstrip('/')})")
    parts = urlsplit(text)
    if parts.scheme.lower() not in SCHEMES:
        raise _bad(f"gateway URL {url!r} must start with http:// or https://, "
                   f"not {parts.scheme}://")
    if not parts.hostname:
        raise _bad(f"gateway URL {url!r} names no host")
    try:
        parts.port  # noqa: B018  (parsing it is the check)
    except ValueError:
        raise _bad(f"gateway URL {url!r} has an invalid port") from None
    if parts.query or parts.fragment:
        raise _bad(f"gateway URL {url!r} must not carry a query or fragment")
    return (parts.scheme.lower() + text[len(parts.scheme):]).rstrip("/")


def websocket_url(base: str) -> str:
    """The ``/ws`` endpoint of a checked base URL: ``ws://`` for http, ``wss://`` for https."""
    return "ws" + base[len("http"):] + "/ws"


def _bad(message: str) -> BadInput:
    return BadInput(message)
