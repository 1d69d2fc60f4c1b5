"""Loading a team's task modules (``CARGO_TASK_MODULES``) and deriving what Cargo needs.

The worker imports every module BEFORE it connects to the broker: a module
that does not import stops it at start (exit code 2, like any configuration
error) naming the variable, the module and the import error, with nothing
half-started (no connection, no queue declared).

The tasks a worker offers are the tasks registered on its app whose class
``__module__`` is one of those modules or a submodule of one (Celery's own
``celery.*`` tasks aside). Any other task a module happened to register (a
library's ``@shared_task`` it imports) is removed from the app, so a message
for it is a message for an unknown task: dead-lettered ``poison``. Two modules
registering one task name: Celery's normal rule, the first registration wins.

For each offered task, at start: its queue (Celery's ``queue`` option, else
``CARGO_TASK_QUEUE``) is checked as a queue name, its policy is resolved
(``workers.policy``: ``CARGO_TASK_LIMITS`` > the decorator's explicit option >
Cargo's default) and applied to the Celery task (``time_limit``,
``max_retries``, ``queue``) so Celery enforces it, and its argument schema is
computed once (``workers.schemas``); a task whose hints do not resolve stops
the worker naming the task.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Iterable, Mapping
from typing import Any

import celery
from celery.app.task import Task

from broker.arguments import ArgumentsSchema, InvalidSchema
from broker.settings import ConfigError, WorkerSettings
from broker.topology import check_queue_name
from workers.base import CargoBaseTask, LoadedTask
from workers.policy import InvalidTaskOption, policy_from_options
from workers.schemas import arguments_schema

VARIABLE = "CARGO_TASK_MODULES"
# Class attributes that carry Cargo's runtime and request handling to a task whose
# own base class is a subclass of CargoBaseTask but not of the app's task class.
_APP_ATTRIBUTES = ("Request", "cargo_runtime", "cargo_finished", "cargo_stream_lookup")


def import_task_modules(names: Iterable[str]) -> list[str]:
    """Import each module; raise ConfigError naming the variable, module and error."""
    loaded = []
    for name in names:
        try:
            importlib.import_module(name)
        except BaseException as exc:  # SystemExit or KeyboardInterrupt in a module too
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise ConfigError(f"{VARIABLE}: module {name!r} could not be imported: "
                              f"{type(exc).__name__}: {exc}") from exc
        loaded.append(name)
    return loaded


def _in_modules(module: str | None, modules: Iterable[str]) -> bool:
    return module is not None and any(module == m or module.startswith(f"{m}.")
                                      for m in modules)


def offered_tasks(app: celery.Celery, modules: Iterable[str]) -> dict[str, Task[Any, Any]]:
    """The app's tasks from ``modules`` (by name); removes every other non-Celery task."""
    modules = tuple(modules)
    offered: dict[str, Task[Any, Any]] = {}
    for name, task in list(app.tasks.items()):
        if name.startswith("celery."):
            continue
        if _in_modules(type(task).__module__, modules):
            offered[name] = task
        else:
            app.tasks.unregister(name)
    return offered


def declared_options(task: Task[Any, Any]) -> dict[str, Any]:
    """The options the task's decorator (or its own base classes) set explicitly:
    Celery puts decorator options in the task class's ``__dict__``; Celery's and
    Cargo's own defaults are not options."""
    options: dict[str, Any] = {}
    for cls in type(task).__mro__:
        if cls is CargoBaseTask or not issubclass(cls, CargoBaseTask):
            break
        for key, value in vars(cls).items():
            options.setdefault(key, value)
    return options


def first_doc_line(doc: str | None) -> str | None:
    lines = inspect.cleandoc(doc or "").strip().splitlines()
    return lines[0].strip()[:1000] if lines else None


def derive(task: Task[Any, Any], settings: WorkerSettings) -> LoadedTask:
    """Check one task and derive its queue, policy and schema; raise ConfigError."""
    name = task.name
    if not isinstance(task, CargoBaseTask):
        raise ConfigError(
            f"{VARIABLE}: task {name!r} has base={type(task).__mro__[1].__qualname__}, which "
            f"is not a subclass of workers.base.CargoBaseTask: it would run without Cargo's "
            f"argument checks, retries and dead-lettering. Drop base= or derive that class "
            f"from workers.base.CargoBaseTask")
    options = declared_options(task)
    queue = options.get("queue") or settings.task_queue
    if not isinstance(queue, str):
        raise ConfigError(f"{VARIABLE}: task {name!r}: option queue={queue!r} must be a "
                          f"queue name (a string)")
    try:
        check_queue_name(queue)
    except ValueError as exc:
        raise ConfigError(f"{VARIABLE}: task {name!r}: queue {queue!r}: {exc}") from None
    try:
        policy = policy_from_options(name, options, settings)
    except InvalidTaskOption as exc:
        raise ConfigError(f"{VARIABLE}: {exc}") from None
    try:
        arguments = ArgumentsSchema(arguments_schema(task.run, title=name))
    except (TypeError, ValueError, InvalidSchema) as exc:
        raise ConfigError(f"{VARIABLE}: task {name!r}: its arguments have no usable "
                          f"schema: {exc}") from None
    return LoadedTask(name=name, queue=queue, policy=policy, arguments=arguments,
                      doc=first_doc_line(task.__doc__))


def apply_to_celery(task: Task[Any, Any], loaded: LoadedTask) -> None:
    """Make Celery enforce Cargo's resolved policy on the task (its own class only)."""
    cls = type(task)
    setattr(cls, "queue", loaded.queue)  # noqa: B010  # celery-types lacks Task.queue
    # Celery's time limits are whole seconds on the pool; a fraction rounds up.
    cls.time_limit = math.ceil(loaded.policy.time_limit)
    cls.max_retries = loaded.policy.max_retries


def share_app_attributes(app: celery.Celery, names: Iterable[str], task_cls: type) -> None:
    """Give a task with its own Cargo base class (not the app's task class) the app's
    runtime and request handling, which live on the app's task class."""
    for name in names:
        cls = type(app.tasks[name])
        if not issubclass(cls, task_cls):
            for attr in _APP_ATTRIBUTES:
                if hasattr(task_cls, attr):
                    setattr(cls, attr, getattr(task_cls, attr))


def load_tasks(app: celery.Celery, settings: WorkerSettings) -> dict[str, LoadedTask]:
    """Import the modules, pick the app's tasks from them, derive and apply each one."""
    modules = import_task_modules(settings.task_module_names)
    offered = offered_tasks(app, modules)
    if not offered:
        raise ConfigError(f"{VARIABLE}: the modules {', '.join(modules)} define no Celery task "
                          f"(Cargo loads @shared_task functions)")
    loaded: dict[str, LoadedTask] = {}
    for name, task in sorted(offered.items()):
        loaded[name] = derive(task, settings)
        apply_to_celery(task, loaded[name])
    return loaded


def task_queues(loaded: Mapping[str, LoadedTask]) -> tuple[str, ...]:
    """The loaded tasks' queues, in a stable order."""
    return tuple(dict.fromkeys(sorted(t.queue for t in loaded.values())))
