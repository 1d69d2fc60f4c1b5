"""gateway.memory: freed heap pages go back to the kernel once many connections closed."""

from __future__ import annotations

import sys

import psutil
import pytest

from gateway.memory import MemoryReleaser, release_free_heap

MB = 1024 * 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_releasing_the_free_heap_gives_freed_blocks_back_to_the_kernel() -> None:
    process = psutil.Process()
    # 100 MB in blocks above CPython's small-object size come from glibc's heap;
    # the last one, still in use, keeps the heap from shrinking by itself.
    blocks = [bytes(1000) + bytes([n % 256]) for n in range(100_000)]
    last = blocks[-1]
    del blocks
    before = process.memory_info().rss
    assert release_free_heap()
    assert before - process.memory_info().rss > 50 * MB
    assert last


def test_memory_is_released_once_enough_connections_closed_since_their_peak() -> None:
    open_connections = [0]
    releaser = MemoryReleaser(lambda: open_connections[0], release=lambda: True, min_drop=100)
    verdicts = []
    for count in (50, 400, 350, 301, 300, 250, 0, 0, 99):
        open_connections[0] = count
        verdicts.append(releaser.due())
    #            50     400    350    301    300   250    0      0      99
    assert verdicts == [False, False, False, False, True, False, True, False, False]
