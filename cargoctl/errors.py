"""What goes wrong at the command line, as one readable line: ``Error: <message> (<code>)``.

:class:`CliError` is a :class:`click.ClickException`, so click prints it on
standard error (one line, no usage text, no traceback) and exits with its code.
The helpers here turn what the gateway answered, or why it could not be
reached, into one; they are pure, for unit tests.
"""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import ssl
from typing import Any

import click

# Enough of a detail list to say what is wrong without flooding a terminal line.
MAX_DETAILS = 3
MAX_BODY_EXCERPT = 120


class CliError(click.ClickException):
    """An error for a person: ``Error: <message> (<code>)`` on stderr, then exit 1."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code

    def format_message(self) -> str:
        return error_line(self.message, self.code)


class BadInput(CliError):
    """What was typed cannot work (a URL without a scheme, ``--args`` that is not JSON):
    exit 2, as for click's own usage errors."""

    exit_code = 2


def error_line(message: str, code: str | None = None) -> str:
    """``message (code)`` on one line, whatever newlines the message carried."""
    text = " ".join(message.split())
    return f"{text} ({code})" if code else text


def http_error(status: int, reason: str | None, body: str, url: str) -> CliError:
    """The gateway's error document (API.md: ``{"error": {"code", "message", "details"?}}``)
    as one line; anything else that answered (a proxy's HTML page) by status and excerpt."""
    try:
        doc: Any = json.loads(body) if body.strip() else None
    except ValueError:
        doc = None
    error = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        message = error["message"]
        detail = summarize_details(error.get("details"), said=message)
        if detail:
            message = f"{message}: {detail}"
        if status == 401:
            message += "; give the gateway's token with --token or CARGO_AUTH_TOKEN"
        code = error.get("code")
        return CliError(message, code if isinstance(code, str) else None)
    excerpt = " ".join(body.split())[:MAX_BODY_EXCERPT]
    message = f"{url} answered HTTP {status}{f' {reason}' if reason else ''}"
    return CliError(f"{message}: {excerpt}" if excerpt else message)


def summarize_details(details: Any, said: str = "") -> str | None:
    """The useful part of an error's ``details``, short: ``args[0]: Input should be a
    valid number`` for a list of ``{"loc", "msg"}``, ``queues: a, b`` for a mapping.

    A mapping's string value that the message ``said`` already, as a word of its
    own, is left out: the 503 of ``/queues`` names its management URL in both,
    and once is enough. Lists (the queues there are) are always given."""
    if isinstance(details, list) and details:
        parts = [_located(item) for item in details[:MAX_DETAILS]]
        if len(details) > MAX_DETAILS:
            parts.append(f"and {len(details) - MAX_DETAILS} more")
        return "; ".join(parts)
    if isinstance(details, dict):
        parts = [f"{key}: {_plain(value)}" for key, value in details.items()
                 if not (isinstance(value, str) and _stands_in(value, said))]
        return "; ".join(parts) or None
    return None


def _stands_in(value: str, text: str) -> bool:
    """``value`` stands in ``text`` as a word of its own: ``cargo`` is not in ``'cargo-x'``."""
    return bool(value) and re.search(rf"(?:^|\s){re.escape(value)}(?=$|[\s:,;)])",
                                     text) is not None


def _located(item: Any) -> str:
    if isinstance(item, dict) and "msg" in item:
        loc = item.get("loc")
        where = _location(loc) if isinstance(loc, list) and loc else ""
        return f"{where}: {item['msg']}" if where else str(item["msg"])
    return _plain(item)


def _location(loc: list[Any]) -> str:
    """``["args", 0, "x"]`` as ``args[0].x``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value) or "none"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def connection_error(url: str, exc: BaseException) -> CliError:
    """``cannot reach the gateway at <url>: connection refused`` and the like."""
    return CliError(f"cannot reach the gateway at {url}: {os_error_text(exc)}")


def os_error_text(exc: BaseException) -> str:
    """A socket error in a few lowercase words (``connection refused``), not Python's
    ``[Errno 111] Connect call failed ('127.0.0.1', 8000)``."""
    os_error = getattr(exc, "os_error", exc)  # aiohttp wraps the OSError
    if isinstance(os_error, socket.gaierror):
        return f"cannot resolve the host name ({os_error.strerror or os_error})".lower()
    if isinstance(os_error, ssl.SSLError):  # before errno: its errno is OpenSSL's, not the OS's
        return f"TLS failed: {getattr(os_error, 'verify_message', None) or os_error.reason}"
    if isinstance(os_error, TimeoutError):
        return "connection timed out"
    number = getattr(os_error, "errno", None)
    if isinstance(number, int) and number in errno.errorcode:
        return os.strerror(number).lower()
    text = str(exc).strip()
    return text or type(exc).__name__
