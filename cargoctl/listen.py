"""Whether ``cargoctl gateway`` can listen where it is told, asked before it starts.

The gateway connects to RabbitMQ and reads the events stream before aiohttp
binds its port, so a port already taken would otherwise surface seconds later,
after start-up logs, as a traceback. Binding a probe socket first (the way
aiohttp will: every address the host resolves to, ``SO_REUSEADDR`` on) says it
at once, in one line.
"""

from __future__ import annotations

import errno
import os
import socket


def listen_problem(host: str, port: int) -> str | None:
    """None when ``host:port`` can be bound now; else why not, for a person:
    ``cannot listen on 127.0.0.1:8000: address already in use``."""
    where = f"{host}:{port}"
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen on {where}: cannot resolve the host ({exc.strerror})"
    for family, kind, proto, _, address in addresses:
        probe = socket.socket(family, kind, proto)
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # as asyncio's create_server does
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            probe.bind(address)
        except OSError as exc:
            return bind_error_line(host, port, exc)
        finally:
            probe.close()
    return None


def bind_error_line(host: str, port: int, exc: OSError) -> str:
    """``cannot listen on HOST:PORT: address already in use`` from a bind's OSError."""
    if exc.errno is not None and exc.errno in errno.errorcode:
        reason = os.strerror(exc.errno).lower()
    else:
        reason = str(exc)
    return f"cannot listen on {host}:{port}: {reason}"
