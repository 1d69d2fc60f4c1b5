"""Several broker addresses in one ``RABBITMQ_URL``: parsing, and which one to try next.

``RABBITMQ_URL`` names one broker or, comma-separated, the nodes of one
RabbitMQ cluster (``amqp://u:p@rabbit-0:5672/prod,amqp://u:p@rabbit-1:5672/prod``).
Every address must name the same vhost: they are doors into one broker, not
different brokers. The gateway's connection loop tries them in turn
(:class:`AddressRotation`); Celery and kombu get the same list as a failover
URL (:func:`kombu_failover_url`), which they try in order (``round-robin``).
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

SEPARATOR = ","
KOMBU_SEPARATOR = ";"


def _vhost_of(url: str) -> str:
    path = urlsplit(url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def split_broker_urls(value: str) -> tuple[str, ...]:
    """The addresses in ``value``, each checked; a ValueError says what is wrong."""
    urls = tuple(part.strip() for part in value.split(SEPARATOR))
    if not urls or any(not url for url in urls):
        raise ValueError("must be one amqp:// URL or several separated by commas, "
                         "with no empty entry")
    for position, url in enumerate(urls, 1):
        where = f"address {position} " if len(urls) > 1 else ""
        if KOMBU_SEPARATOR in url:
            raise ValueError(f"{where}contains ';': separate several addresses with commas")
        parts = urlsplit(url)
        if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
            raise ValueError(f"{where}must be an amqp:// or amqps:// URL with a host")
        try:
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError as exc:
            raise ValueError(f"{where}has a malformed port: {exc}") from None
    vhosts = {_vhost_of(url) for url in urls}
    if len(vhosts) > 1:
        raise ValueError(f"every address must name the same vhost (got {sorted(vhosts)})")
    if len(set(urls)) != len(urls):
        raise ValueError("names the same address twice")
    return urls


def kombu_failover_url(urls: tuple[str, ...]) -> str:
    """The addresses as kombu's failover URL (``;``-separated; one URL stays as it is)."""
    return KOMBU_SEPARATOR.join(urls)


class AddressRotation:
    """Which address to connect to next: the one that last worked, else the following one.

    A connection that failed or was lost moves on to the next address, so a
    stopped node costs one failed attempt, not one per reconnect.
    """

    def __init__(self, urls: tuple[str, ...]) -> None:
        if not urls:
            raise ValueError("no broker address")
        self._urls = urls
        self._index = 0

    @property
    def current(self) -> str:
        return self._urls[self._index]

    def failed(self) -> None:
        """The current address failed (refused, timed out or dropped): try the next one."""
        self._index = (self._index + 1) % len(self._urls)
