"""The catalog of Cargo tasks: names, functions, and argument validation.

The gateway validates every submission here before publishing it (a bad
argument is a 422 at the door, not a failed task later), and the worker runs
the same validation before calling a task, so a message that bypassed the
gateway (a raw ``send_task``) fails with the same clear error.

Pure on purpose: no Celery import, so the gateway does not load Celery.
"""

from __future__ import annotations

import functools
import inspect
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from workers import tasks

# Strict: "3" is not a number and True is not 1. allow_inf_nan=False: NaN and
# infinities are not JSON, so they could not travel in a task message anyway.
# Strict float still takes ints (JSON has one number type).
_ARGUMENTS_CONFIG = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False,
                               validate_by_alias=True)

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_KEYWORD = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class InvalidArguments(ValueError):
    """Arguments that do not fit a task; ``errors`` are pydantic-style ``{loc, msg}``."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("; ".join(_describe(e) for e in errors))


def _describe(error: dict[str, Any]) -> str:
    loc = ".".join(str(part) for part in error["loc"])
    return f"{loc}: {error['msg']}" if loc else str(error["msg"])


@dataclass(frozen=True)
class TaskSpec:
    """A task as the gateway and the workers know it."""

    name: str
    func: Callable[..., Any]
    # None: the settings' default task queue.
    queue: str | None = None
    # Retry and limit policy (workers.policy); None: the settings' default,
    # and CARGO_TASK_LIMITS overrides limits and retries per task name.
    max_retries: int | None = None
    retry_backoff: float | None = None
    retry_backoff_max: float | None = None
    time_limit: float | None = None
    memory_mb: int | None = None
    # Errors of this task that no retry can fix (besides workers.policy.NON_RETRYABLE).
    non_retryable: tuple[type[BaseException], ...] = ()

    @cached_property
    def _parameters(self) -> list[inspect.Parameter]:
        params = list(inspect.signature(self.func).parameters.values())
        for param in params:
            # Every argument must be named and typed so it can be validated.
            if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise TypeError(f"task {self.name!r}: *args/**kwargs cannot be validated")
        return params

    @cached_property
    def _plain_types(self) -> tuple[type, ...] | None:
        """The types of the parameters when every one is positional, required and
        annotated exactly ``float``, ``int``, ``str`` or ``bool``; else None.

        For such a task, arguments that are already exactly those types (and
        finite) need no validation or coercion: :meth:`validate` returns them as
        they are, which is what the model would return, without building it.
        """
        hints = typing.get_type_hints(self.func)
        types: list[type] = []
        for param in self._parameters:
            hint = hints.get(param.name)
            if (param.kind not in _POSITIONAL or param.default is not inspect.Parameter.empty
                    or hint not in (float, int, str, bool)):
                return None
            types.append(hint)
        return tuple(types)

    @cached_property
    def _model(self) -> type[BaseModel]:
        hints = typing.get_type_hints(self.func, include_extras=True)
        fields: dict[str, Any] = {}
        for index, param in enumerate(self._parameters):
            default = ... if param.default is inspect.Parameter.empty else param.default
            # Fields get neutral names and the parameter name as alias, so a
            # parameter called e.g. ``schema`` cannot clash with BaseModel.
            fields[f"p{index}"] = (hints.get(param.name, Any),
                                   Field(default, alias=param.name))
        model: type[BaseModel] = create_model(f"{self.name}_arguments",
                                              __config__=_ARGUMENTS_CONFIG, **fields)
        return model

    def validate(self, args: list[Any], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Check args and kwargs against the signature and hints; return them normalised.

        The result keeps the call's shape (what was positional stays
        positional) with values coerced to their declared types (an int given
        for a float becomes a float) and is JSON-serialisable. Raises
        :class:`InvalidArguments` listing every problem.
        """
        if not isinstance(args, list | tuple) or not isinstance(kwargs, dict):
            raise InvalidArguments([{"loc": [], "msg": "args must be a list and kwargs an object"}])
        plain = self._plain_types
        if (plain is not None and not kwargs and len(args) == len(plain)
                and all(type(value) is kind
                        and (not isinstance(value, float) or math.isfinite(value))
                        for value, kind in zip(args, plain, strict=True))):
            return list(args), {}
        params = self._parameters
        positional = [p for p in params if p.kind in _POSITIONAL]
        keyword = {p.name for p in params if p.kind in _KEYWORD}
        errors: list[dict[str, Any]] = []
        if len(args) > len(positional):
            errors.append({"loc": ["args"], "msg": f"takes at most {len(positional)} positional "
                                                   f"argument(s) but {len(args)} were given"})
        # Where each parameter came from, to report errors where the client put it.
        source: dict[str, list[Any]] = {}
        values: dict[str, Any] = {}
        for index, (param, value) in enumerate(zip(positional, args, strict=False)):
            values[param.name] = value
            source[param.name] = ["args", index]
        for key, value in kwargs.items():
            if key in values:
                errors.append({"loc": ["kwargs", key], "msg": "given both positionally and by "
                                                              "keyword"})
            elif key not in keyword:
                errors.append({"loc": ["kwargs", key], "msg": "unexpected keyword argument"})
            else:
                values[key] = value
                source[key] = ["kwargs", key]
        try:
            model = self._model.model_validate(values)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                name, *rest = error["loc"] or ("",)
                if error["type"] == "missing":
                    errors.append({"loc": self._missing_loc(str(name)),
                                   "msg": f"missing required argument {name!r}"})
                elif error["type"] != "extra_forbidden":  # already reported above
                    errors.append({"loc": [*source.get(str(name), [name]), *rest],
                                   "msg": error["msg"]})
        if errors:
            raise InvalidArguments(errors)
        dumped = model.model_dump(mode="json", by_alias=True)
        return ([dumped[p.name] for p in positional[: len(args)]],
                {key: dumped[key] for key in kwargs})

    def _missing_loc(self, name: str) -> list[Any]:
        for index, param in enumerate(self._parameters):
            if param.name == name and param.kind in _POSITIONAL:
                return ["args", index]
        return ["kwargs", name]


@functools.cache
def _catalog() -> dict[str, TaskSpec]:
    # Built on first use, not at import; cached because each spec caches its
    # pydantic model, which is too slow to rebuild on every submission.
    specs = [
        TaskSpec("calculate_distance", tasks.calculate_distance),
        # Its longest allowed run, plus a minute.
        TaskSpec("sleep", tasks.sleep, time_limit=tasks.MAX_SLEEP_SECONDS + 60),
        # Leaking is its whole point: retrying it would only leak again.
        TaskSpec("memory_leak_task", tasks.memory_leak_task, max_retries=0,
                 time_limit=tasks.MAX_LEAK_SECONDS + 60),
    ]
    return {spec.name: spec for spec in specs}


def task_specs() -> dict[str, TaskSpec]:
    """Every task a client may submit, by name (a fresh dict the caller may change)."""
    return dict(_catalog())


def get_task_spec(name: str) -> TaskSpec | None:
    return _catalog().get(name)
