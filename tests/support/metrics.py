"""Scraping real processes' Prometheus endpoints in tests."""

from __future__ import annotations

import socket
from collections.abc import Callable

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.support.eventually import eventually

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def scrape(url: str) -> Samples:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        resp.raise_for_status()
        return parse(await resp.text())


def total(samples: Samples, metric: str, **labels: str) -> float:
    """Sum of every sample named ``metric`` whose labels include ``labels``."""
    return sum(value for (sample, pairs), value in samples.items()
               if sample == metric and labels.items() <= dict(pairs).items())


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


async def wait_scrape(url: str, done: Callable[[Samples], bool], timeout: float = 60) -> Samples:
    """Scrape until ``done`` holds (bounded); the last scrape either way."""
    last: Samples = {}

    async def scraped() -> Samples:
        nonlocal last
        last = await scrape(url)
        return last

    try:
        return await eventually(scraped, timeout, f"a scrape of {url} that satisfies the test",
                                until=lambda samples: bool(samples) and done(samples),
                                ignoring=(aiohttp.ClientError,))
    except TimeoutError:
        return last
