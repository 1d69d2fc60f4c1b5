"""The figures of Cargo's task queues, as the RabbitMQ management API has them.

Which queues: the topology's (the default task queue), every queue a live
worker consumes or routes an announced task to (``broker.catalog``), and every
queue of the vhost that is declared as a Cargo task queue (dead-lettering into
``cargo.dlx`` under its own ``<queue>.XQ``): a team's queue whose workers all
died still has its backlog, and that is exactly when someone looks at it.

Each has its dead-letter queue's depth beside it (``broker.topology``
names it). A queue that does not exist yet shows zeros. The management API's
counters are its statistics, refreshed every few seconds by RabbitMQ, not a
live count; one replica asks for them at most once a second
(``gateway.short_lived``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import aiohttp

from broker.catalog import is_task_queue_name
from broker.management import ManagementClient, ManagementError
from broker.settings import mask_passwords
from broker.topology import DEAD_LETTER_EXCHANGE, dead_letter_queue_name
from gateway.responses import DeadLetterDepth, QueueItem
from gateway.short_lived import ShortLived

# How long one answer of the management API serves every caller.
MAX_AGE_SECONDS = 1.0
# The console waits for this answer; the management API answers in milliseconds
# when it is well.
MANAGEMENT_TIMEOUT = 5.0
COLUMNS = ("name", "messages_ready", "messages_unacknowledged", "consumers", "arguments")


class ManagementUnavailable(RuntimeError):
    """The management API did not give the queues' figures; ``url`` has no password."""

    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        super().__init__(f"cannot read the queues from the RabbitMQ management API at "
                         f"{url}: {problem}")


@dataclass(frozen=True)
class QueueFigures:
    ready: int = 0
    unacked: int = 0
    consumers: int = 0
    # The queue's declared arguments: tell a Cargo task queue from any other.
    arguments: Mapping[str, Any] | None = None


def _count(value: Any) -> int:
    # A queue that has just been declared has no statistics yet: 0 until it has.
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def parse_queues(listing: Any) -> dict[str, QueueFigures]:
    """The management API's queue listing, by name; raises ValueError for another shape."""
    if not isinstance(listing, list):
        raise ValueError(f"expected a list of queues, got {type(listing).__name__}")
    figures: dict[str, QueueFigures] = {}
    for queue in listing:
        if not isinstance(queue, dict) or not isinstance(queue.get("name"), str):
            raise ValueError(f"expected a queue object with a name, got {queue!r:.200}")
        arguments = queue.get("arguments")
        figures[queue["name"]] = QueueFigures(
            ready=_count(queue.get("messages_ready")),
            unacked=_count(queue.get("messages_unacknowledged")),
            consumers=_count(queue.get("consumers")),
            arguments=arguments if isinstance(arguments, dict) else None)
    return figures


def is_cargo_task_queue(name: str, figures: QueueFigures) -> bool:
    """Declared as Cargo declares a task queue: dead letters to ``<name>.XQ`` on the DLX."""
    arguments = figures.arguments or {}
    return (is_task_queue_name(name)
            and arguments.get("x-dead-letter-exchange") == DEAD_LETTER_EXCHANGE
            and arguments.get("x-dead-letter-routing-key") == dead_letter_queue_name(name))


def task_queue_names(topology: Sequence[str], announced: Iterable[str],
                     on_broker: Mapping[str, QueueFigures]) -> list[str]:
    """The topology's queues in their order, then the others sorted, each once."""
    others = set(announced) | {name for name, figures in on_broker.items()
                               if is_cargo_task_queue(name, figures)}
    return list(dict.fromkeys((*topology, *sorted(others))))


def queue_items(names: Iterable[str], on_broker: Mapping[str, QueueFigures]
                ) -> list[QueueItem]:
    """``GET /queues``'s items: each queue's figures and its dead-letter queue's depth."""
    missing = QueueFigures()
    items = []
    for name in names:
        queue = on_broker.get(name, missing)
        dead_letters = dead_letter_queue_name(name)
        items.append(QueueItem(name=name, ready=queue.ready, unacked=queue.unacked,
                               consumers=queue.consumers,
                               dead_letter=DeadLetterDepth(
                                   name=dead_letters,
                                   ready=on_broker.get(dead_letters, missing).ready)))
    return items


class QueueStats:
    """Every queue of one vhost with its figures, from the management API (cached);
    used inside ``async with``, which ends a read under way."""

    def __init__(self, management: ManagementClient, management_url: str, vhost: str,
                 max_age: float = MAX_AGE_SECONDS) -> None:
        self._management = management
        self.url = mask_passwords(management_url)
        self._vhost = vhost
        self._cache: ShortLived[dict[str, QueueFigures]] = ShortLived(self._read, max_age)

    async def get(self) -> dict[str, QueueFigures]:
        """Raises :class:`ManagementUnavailable`."""
        return await self._cache.get()

    async def _read(self) -> dict[str, QueueFigures]:
        try:
            listing = await self._management.list_queues(self._vhost, COLUMNS)
            return parse_queues(listing)
        except ManagementError as exc:
            raise ManagementUnavailable(self.url, str(exc)) from None
        except TimeoutError:  # aiohttp's total timeout is no ClientError
            raise ManagementUnavailable(
                self.url, f"no answer within {MANAGEMENT_TIMEOUT:g} s") from None
        except (ValueError, aiohttp.ClientError) as exc:  # JSON that is no queue listing
            raise ManagementUnavailable(self.url, f"unexpected answer: {exc}") from None

    async def __aenter__(self) -> Self:
        await self._cache.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._cache.__aexit__(exc_type, exc, tb)
