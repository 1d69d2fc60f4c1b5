"""Cargo's behaviour for every task a worker runs, ordinary ``@shared_task`` functions included.

The worker's app uses :class:`CargoBaseTask` as Celery's ``task_cls``, so a
plain ``@shared_task`` (bound or not) gets it without knowing Cargo. A task that
names its own ``base=`` must subclass it (the worker refuses to start
otherwise: the task would run without Cargo's guarantees).

What it adds to Celery's ``Task``:

- the arguments are checked against the JSON Schema the worker announces for
  the task (a message may bypass the gateway); a mismatch raises ``TypeError``,
  never retried, so the message is dead-lettered ``failed``. Values are not
  coerced: the task gets the JSON values as plain Celery would give them;
- ``report_progress(...)`` and ``self.update_state(...)`` become ``progress`` events;
- Cargo's retry policy (``workers.policy``) for a task without ``autoretry_for``.

For a team, in ten lines::

    @shared_task(queue="reports",              # Celery's options are honoured:
                 time_limit=300, soft_time_limit=240, max_retries=5, retry_backoff=2,
                 autoretry_for=(IOError,),     # then Celery's autoretry decides
                 dont_autoretry_for=(KeyError,),  # Cargo: never retried
                 cargo_memory_limit_mb=128)    # Cargo: the memory guard's limit
    def build_report(month: str) -> dict: ...

Without ``autoretry_for`` every other exception is retried with Cargo's backoff
(``raise workers.policy.PermanentError`` never is); ``CARGO_TASK_LIMITS`` overrides
``time_limit``, ``max_retries`` and the memory limit per task name at deploy time.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import kombu
import structlog
from celery import states
from celery.app.task import Task
from celery.exceptions import Ignore, Reject, Retry

from broker.arguments import ArgumentsSchema, InvalidArguments
from broker.topology import MAX_RETRIES_HEADER
from workers.lifecycle import routing_key_queue
from workers.policy import TaskPolicy
from workers.progress import reporting_to
from workers.runtime import CargoRuntime, runtime_of

log = structlog.get_logger(__name__)

# The state Celery's docs use for progress; its meta is the progress as it is.
PROGRESS_STATE = "PROGRESS"


@dataclass(frozen=True)
class LoadedTask:
    """What the worker derived from one task at start (``workers.modules``)."""

    name: str
    queue: str
    policy: TaskPolicy
    arguments: ArgumentsSchema
    doc: str | None

    @property
    def schema(self) -> dict[str, Any]:
        """The JSON Schema the worker announces (the one ``arguments`` checks)."""
        return self.arguments.schema


def progress_of_state(state: object, meta: object) -> dict[str, Any] | None:
    """The ``progress`` of an ``update_state`` call, or None when it is not progress.

    ``PROGRESS`` -> ``meta`` itself (a non-dict meta as ``{"meta": meta}``); another
    custom state S -> ``{"state": S, **meta}``; Celery's own states (SUCCESS,
    FAILURE, ...) are Celery's business, not progress.
    """
    if not isinstance(state, str) or not state or state in states.ALL_STATES:
        return None
    if state == PROGRESS_STATE:
        if isinstance(meta, Mapping):
            return dict(meta)
        return {} if meta is None else {"meta": meta}
    if isinstance(meta, Mapping):
        return {"state": state, **meta}
    return {"state": state} if meta is None else {"state": state, "meta": meta}


class CargoBaseTask(Task):  # type: ignore[type-arg]  # generic in celery-types only
    """The base class of every task on a Cargo worker (see the module docstring)."""

    # Cargo's per-message Request (workers.request) and the app's runtime (workers.app sets it).
    Request = "workers.request:CargoRequest"
    cargo_runtime: ClassVar[CargoRuntime | None] = None

    def cargo_loaded(self) -> LoadedTask | None:
        runtime = runtime_of(self)
        return runtime.tasks.get(self.name) if runtime is not None else None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        loaded = self.cargo_loaded()
        runtime = runtime_of(self)
        if loaded is None or runtime is None:  # not loaded by a Cargo worker: plain Celery
            return super().__call__(*args, **kwargs)
        # Messages can bypass the gateway (send_task, other producers): apply
        # the announced schema here too, and fail like a Python call with bad
        # arguments would, with every problem named.
        try:
            loaded.arguments.validate(list(args), kwargs)
        except InvalidArguments as exc:
            raise TypeError(f"{self.name}() got invalid arguments: {exc}") from None
        with reporting_to(functools.partial(runtime.events.progress, self)):
            try:
                return super().__call__(*args, **kwargs)
            except (Retry, Reject, Ignore):
                raise  # Celery's own control flow
            except Exception as exc:
                raise self._cargo_retry(loaded, exc) from None

    def _cargo_retry(self, loaded: LoadedTask, exc: Exception) -> BaseException:
        """The exception that ends this attempt: a Celery ``Retry`` when Cargo's policy
        retries it, else ``exc`` itself (dead-lettered ``failed``)."""
        policy = loaded.policy
        if policy.celery_autoretry:
            return exc  # Celery's autoretry already had its say: final
        retries = self.request.retries or 0
        # A message may carry its own budget (a bridged Dramatiq max_retries).
        budget = policy.retry_budget(getattr(self.request, MAX_RETRIES_HEADER, None))
        if not policy.should_retry(exc, retries, budget):
            return exc
        # Exponential backoff with jitter; Celery publishes the retry through
        # RabbitMQ's native delayed delivery (whole seconds, at least one) and
        # acks this message.
        try:
            return self.retry(exc=exc, countdown=math.ceil(policy.delay(retries)),
                              max_retries=budget, headers=cast(Any, self._own_headers()),
                              **self._same_route(loaded.queue))
        except Retry as retry:
            return retry
        except Exception as failed:
            return failed

    def update_state(self, task_id: str | None = None, state: str | None = None,
                     meta: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Celery's ``update_state``: there is no result backend, so a custom state of the
        running task becomes a ``progress`` event (:func:`progress_of_state`). Never raises."""
        try:
            runtime = runtime_of(self)
            own = task_id is None or task_id == self.request.id
            progress = progress_of_state(state, meta) if own else None
            if runtime is None or progress is None or self.request.id is None:
                # Only the running task's own custom states become progress events.
                log.debug("task.update_state_ignored", task_id=task_id, state=state,
                          task_name=self.name)
                return
            runtime.events.progress(self, progress)
        except Exception:
            log.warning("task.update_state_unpublished", task_name=self.name,
                        task_id=self.request.id, exc_info=True)

    def _same_route(self, queue: str) -> dict[str, Any]:
        """A retry goes back the way the message came: a bridged Dramatiq message
        arrives by its Dramatiq queue's name (so its dead letters go to that
        queue's ``.XQ``), where Celery would route the retry by the task's queue.

        Celery takes a delayed retry's routing key from its queue object, so the
        retry gets the same queue (same name and arguments) bound by that name.
        """
        from broker.declare import kombu_queue

        arrived_by = routing_key_queue(self.request.delivery_info)
        runtime = runtime_of(self)
        if not arrived_by or arrived_by == queue or runtime is None:
            return {}
        same = kombu_queue(runtime.topology.queue(queue), runtime.topology)
        return {"queue": kombu.Queue(same.name, exchange=same.exchange, routing_key=arrived_by,
                                     durable=same.durable,
                                     queue_arguments=same.queue_arguments)}

    def _own_headers(self) -> dict[str, Any] | None:
        """Cargo's per-message headers, carried over to the retry's message (celery-types
        says header values are strings; Celery sends any JSON value)."""
        budget = getattr(self.request, MAX_RETRIES_HEADER, None)
        return {MAX_RETRIES_HEADER: budget} if budget is not None else None


def is_cargo_task(task: Task[Any, Any]) -> bool:
    return isinstance(task, CargoBaseTask)
