"""Server-to-client WebSocket text frames, built once so that several go out in one write.

aiohttp's ``send_frame`` writes every frame to the socket on its own: one
``send`` system call per frame and subscriber, measured at 60 % of the gateway's
CPU while 1,000 clients followed a burst (py-spy, issue 13). A server's frames
are not masked (RFC 6455, 5.1) and, with permessage-deflate off (``gateway.ws``),
a text frame is a header and the UTF-8 payload, the same bytes for every
connection. So an event's frame is built once for all its subscribers, and the
frames queued for one connection are joined into one write. The bytes on the
wire are exactly those ``send_json`` wrote (a unit test compares them).
Bought, with the one write per wake-up (``gateway.ws_transport``): 14.4 → 7.0 us
of gateway CPU a frame for 1,000 clients and 500 tasks (bench/RESULTS.md, fan-out).
"""

from __future__ import annotations

import json
import struct
from typing import Any

_FIN_TEXT = 0x81  # FIN bit, opcode 1 (text)
_LEN2 = struct.Struct("!BBH")
_LEN8 = struct.Struct("!BBQ")


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame carrying ``payload``."""
    length = len(payload)
    if length < 126:
        header = bytes((_FIN_TEXT, length))
    elif length < 65536:
        header = _LEN2.pack(_FIN_TEXT, 126, length)
    else:
        header = _LEN8.pack(_FIN_TEXT, 127, length)
    return header + payload


def json_frame(doc: dict[str, Any]) -> bytes:
    """The frame ``ws.send_json(doc)`` sends: ``json.dumps`` with its default
    separators, UTF-8."""
    return text_frame(json.dumps(doc).encode())
