"""Task ids: random version-4 UUIDs, from one ``os.urandom`` call per batch.

``uuid.uuid4()`` reads the kernel's random source once per id (a system call
per submission); reading 256 ids' worth at a time gives the same ids, from
the same source, for a fraction of the cost.
"""

from __future__ import annotations

import os

_ID_BYTES = 16
# bench.submit: part of 818,801 -> 770,633 instructions per submission (RESULTS.md
# "What changed, and what each change bought": ids from one urandom read per 256).


class TaskIds:
    def __init__(self, batch: int = 256) -> None:
        self._batch = batch
        self._pool = b""
        self._next = 0

    def __call__(self) -> str:
        if self._next >= len(self._pool):
            self._pool = os.urandom(_ID_BYTES * self._batch)
            self._next = 0
        raw = bytearray(self._pool[self._next:self._next + _ID_BYTES])
        self._next += _ID_BYTES
        raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
        text = raw.hex()
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
