"""The AMQP frames of one publish, marshalled with fewer steps than pamqp's generic path.

A submission's publish is most of what the gateway spends on it, and most of
that was pamqp marshalling Celery's 19 headers through its generic, sorted,
type-dispatching table encoder, for headers that are mostly the same in every
message. This module produces exactly pamqp's bytes (the unit tests compare
them for every property and value type used) with three shortcuts:

* table entries whose key and value repeat between messages (``lang: py``,
  ``origin``, ``retries: 0``…) are encoded once and cached;
* the ``Basic.Publish`` method frame is cached per channel, exchange and
  routing key;
* the content header is packed directly for the properties Cargo sets.

Values are still encoded by pamqp's own functions; only the assembly is ours.
This module is the one place that relies on pamqp's wire layout, written against
pamqp 4.0.1 (pinned in ``pyproject.toml``): ``encode.short_string``,
``encode.encode_table_value`` and ``frame.marshal``, the frame constants, and
that pamqp encodes a table's entries sorted by key. What it buys: with the
batched publish (``broker.aiormq_adapter``), a submission went from 1,288,552 to
818,801 instructions (bench/RESULTS.md, "What changed, and what each change
bought", item 2). ``tests/unit/test_adapters_pamqp.py`` and
``tests/unit/test_frames.py`` fail, naming pamqp and its version, when an
upgrade changes those bytes: re-measure, then update this module.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Mapping
from typing import Any

from pamqp import commands, constants, encode
from pamqp import frame as pamqp_frame

PINNED = {"pamqp": "4.0.1"}

_FRAME_HEADER = struct.Struct(">BHI")
_FRAME_END = bytes([constants.FRAME_END])
# class id, weight, body size, property flags (one flag word: Cargo sets no
# property beyond the 15th).
_CONTENT_HEADER = struct.Struct(">HHQH")
_OCTET = struct.Struct(">B")
_LONG = struct.Struct(">I")

# Property flags, in wire order (AMQP 0-9-1, basic class).
_CONTENT_TYPE = 1 << 15
_CONTENT_ENCODING = 1 << 14
_HEADERS = 1 << 13
_DELIVERY_MODE = 1 << 12
_PRIORITY = 1 << 11
_CORRELATION_ID = 1 << 10
_MESSAGE_ID = 1 << 7

# Scalar types whose (key, type, value) can key the entry cache; the type is
# part of the key because True == 1 but they encode differently.
_CACHEABLE = (str, int, float, bool, type(None))


def _frame(frame_type: int, channel: int, payload: bytes) -> bytes:
    return _FRAME_HEADER.pack(frame_type, channel, len(payload)) + payload + _FRAME_END


# Cached per key: RESULTS.md "What changed, and what each change bought", item 2.
@functools.lru_cache(maxsize=1024)
def publish_frame(channel: int, exchange: str, routing_key: str) -> bytes:
    """The ``Basic.Publish`` method frame (mandatory) for a channel, exchange and key."""
    method = commands.Basic.Publish(exchange=exchange, routing_key=routing_key, mandatory=True)
    return pamqp_frame.marshal(method, channel)


def body_frames(channel: int, body: bytes, max_size: int) -> bytes:
    """The body, split into frames of at most ``max_size`` bytes of payload."""
    if len(body) <= max_size:
        return _frame(constants.FRAME_BODY, channel, body) if body else b""
    return b"".join(_frame(constants.FRAME_BODY, channel, body[start:start + max_size])
                    for start in range(0, len(body), max_size))


class TableEncoder:
    """pamqp's field-table encoding, with the entries that repeat between messages cached.

    ``unique_keys`` name entries whose values differ in every message (ids,
    argument reprs); they are encoded each time without touching the cache.
    The cache stops growing at ``max_entries``.
    """

    def __init__(self, unique_keys: Iterable[str] = (), max_entries: int = 4096) -> None:
        self._unique = frozenset(unique_keys)
        self._max_entries = max_entries
        self._entries: dict[tuple[str, type, Any], bytes] = {}
        self._keys: dict[str, bytes] = {}

    def encode(self, table: Mapping[str, Any] | None) -> bytes:
        if not table:
            return _LONG.pack(0)
        parts = []
        for key in sorted(table):  # pamqp's order: same bytes, same tests
            value = table[key]
            if key in self._unique:
                prefix = self._keys.get(key)
                if prefix is None:
                    prefix = self._keys[key] = encode.short_string(key)
                parts.append(prefix + encode.encode_table_value(value))
                continue
            kind = type(value)
            # Lists and tables are cached by their repr, which tells [1] from [True].
            cache_key = (key, kind, value if kind in _CACHEABLE else repr(value))
            entry = self._entries.get(cache_key)
            if entry is None:
                entry = encode.short_string(key) + encode.encode_table_value(value)
                if len(self._entries) < self._max_entries:
                    self._entries[cache_key] = entry
            parts.append(entry)
        payload = b"".join(parts)
        return _LONG.pack(len(payload)) + payload


def content_header_frame(channel: int, body_size: int, *, content_type: str,
                         headers: bytes | None = None, content_encoding: str | None = None,
                         delivery_mode: int | None = None, priority: int | None = None,
                         correlation_id: str | None = None,
                         message_id: str | None = None) -> bytes:
    """The content header frame; ``headers`` is a table from :class:`TableEncoder`."""
    flags = _CONTENT_TYPE
    parts = [encode.short_string(content_type)]
    if content_encoding is not None:
        flags |= _CONTENT_ENCODING
        parts.append(encode.short_string(content_encoding))
    if headers is not None:
        flags |= _HEADERS
        parts.append(headers)
    if delivery_mode is not None:
        flags |= _DELIVERY_MODE
        parts.append(_OCTET.pack(delivery_mode))
    if priority is not None:
        flags |= _PRIORITY
        parts.append(_OCTET.pack(priority))
    if correlation_id is not None:
        flags |= _CORRELATION_ID
        parts.append(encode.short_string(correlation_id))
    if message_id is not None:
        flags |= _MESSAGE_ID
        parts.append(encode.short_string(message_id))
    payload = _CONTENT_HEADER.pack(commands.Basic.frame_id, 0, body_size, flags) + b"".join(parts)
    return _frame(constants.FRAME_HEADER, channel, payload)
