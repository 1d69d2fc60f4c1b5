"""A task function's arguments as the JSON Schema its worker announces.

Pure (no Celery): from the function's signature and type hints to the schema
``broker.arguments`` checks calls against. The rules, for a team's tasks:

- a typed parameter gets pydantic's JSON Schema of its hint (``Annotated``
  bounds such as ``Field(ge=0)`` included);
- an untyped one (``def add(a, b)``) accepts any JSON value, and so does one
  whose hint has no JSON Schema (an arbitrary class): the task still runs as it
  would under plain Celery, and the worker logs which parameter is unchecked;
- ``*args`` lets extra positional values through, ``**kwargs`` extra keywords;
- a default that JSON can carry is shown as the schema's ``default``.

The first parameter of a bound task (``bind=True``) is the task itself, not
an argument: pass the function as Celery calls it (``task.run``).
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable
from typing import Any

import structlog
from pydantic import ConfigDict, Field, TypeAdapter, create_model
from pydantic.errors import PydanticUserError

from broker.arguments import POSITIONAL, POSITIONAL_ONLY, VARARGS

log = structlog.get_logger(__name__)

_P = inspect.Parameter
_POSITIONAL_KINDS = (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)


def _usable_hint(name: str, hint: Any) -> Any:
    try:
        TypeAdapter(hint).json_schema()
    except (PydanticUserError, TypeError, ValueError) as exc:
        # Any JSON value is accepted for that parameter.
        log.warning("task.parameter_without_schema", parameter=name, type=repr(hint),
                    error=type(exc).__name__)
        return Any
    return hint


def _json_default(value: Any) -> tuple[bool, Any]:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False, None
    return True, value


def arguments_schema(func: Callable[..., Any], title: str | None = None) -> dict[str, Any]:
    """The JSON Schema of ``func``'s arguments (see :mod:`broker.arguments`)."""
    signature = inspect.signature(func)
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:  # a forward reference that does not resolve, ...
        raise TypeError(f"the type hints of {getattr(func, '__qualname__', func)!r} do not "
                        f"resolve: {exc}") from exc
    fields: dict[str, Any] = {}
    names: dict[str, str] = {}
    positional: list[str] = []
    positional_only: list[str] = []
    varargs = varkw = False
    for index, param in enumerate(signature.parameters.values()):
        if param.kind is _P.VAR_POSITIONAL:
            varargs = True
            continue
        if param.kind is _P.VAR_KEYWORD:
            varkw = True
            continue
        if param.kind in _POSITIONAL_KINDS:
            positional.append(param.name)
        if param.kind is _P.POSITIONAL_ONLY:
            positional_only.append(param.name)
        hint = _usable_hint(param.name, hints.get(param.name, Any))
        if param.default is _P.empty:
            info = Field(..., alias=param.name)
        else:
            known, default = _json_default(param.default)
            # A default JSON cannot show is still a default: the parameter is optional.
            info = Field(default if known else None, alias=param.name)
        # Neutral field names, the parameter name as alias: a parameter called
        # ``schema`` or ``model_config`` cannot clash with BaseModel.
        fields[f"p{index}"] = (hint, info)
        names[f"p{index}"] = param.name
    model = create_model(str(title or getattr(func, "__name__", "arguments")),
                         __config__=ConfigDict(extra="forbid"), **fields)
    schema: dict[str, Any] = model.model_json_schema(by_alias=True)
    schema["title"] = title or schema.get("title", "arguments")
    schema.setdefault("properties", {})
    schema["additionalProperties"] = varkw
    schema[POSITIONAL] = positional
    if positional_only:
        schema[POSITIONAL_ONLY] = positional_only
    if varargs:
        schema[VARARGS] = True
    return schema
