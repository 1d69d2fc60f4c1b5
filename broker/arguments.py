"""Task arguments against an announced JSON Schema: the one check gateways, the
bridge and workers all run.

A worker announces each task's arguments (``broker.catalog``) as one JSON
Schema object keyed by parameter name, plus where each may be given:

- ``x-cargo-positional``: the parameters that may come in ``args``, in order;
- ``x-cargo-positional-only``: those of them that may not come by keyword;
- ``x-cargo-varargs``: ``true`` when the task takes ``*args`` (extra positional
  values are passed on unchecked);
- ``additionalProperties``: ``true`` when it takes ``**kwargs``.

:class:`ArgumentsSchema` maps a call's ``args``/``kwargs`` onto that object,
validates it with :mod:`jsonschema` and reports every problem where the client
put it (``["args", 0]``, ``["kwargs", "y"]``), worded as pydantic words them
(the gateway's 422 details read the same whatever validated them).

Types are strict, as a Python call would be: ``true`` is not a number,
``2.0`` is not an integer, and a number too big for a float is not a number.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

POSITIONAL = "x-cargo-positional"
POSITIONAL_ONLY = "x-cargo-positional-only"
VARARGS = "x-cargo-varargs"

_FLOAT_MAX = sys.float_info.max


def _is_number(checker: Any, instance: object) -> bool:
    if isinstance(instance, bool):
        return False
    if isinstance(instance, int):
        return -_FLOAT_MAX <= instance <= _FLOAT_MAX  # 10**400 fits no float
    return isinstance(instance, float) and math.isfinite(instance)


def _is_integer(checker: Any, instance: object) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


_STRICT_TYPES = Draft202012Validator.TYPE_CHECKER.redefine_many(
    {"number": _is_number, "integer": _is_integer})
StrictValidator = jsonschema.validators.extend(Draft202012Validator, type_checker=_STRICT_TYPES)

# The simple types the fast path checks itself: exactly what _STRICT_TYPES accepts.
_PLAIN_TYPES = {"number", "integer", "string", "boolean"}
# Keywords a parameter's schema may carry and still be "plain" (annotations only).
_ANNOTATIONS = {"type", "title", "description", "default", "examples"}

# pydantic's wording of a type mismatch, by JSON type.
_TYPE_WORDS = {"number": "a valid number", "integer": "a valid integer",
               "string": "a valid string", "boolean": "a valid boolean",
               "array": "a valid list", "object": "a valid dictionary", "null": "None"}


class InvalidArguments(ValueError):
    """Arguments that do not fit a task; ``errors`` are ``{"loc", "msg"}`` dicts."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("; ".join(_describe(e) for e in errors))


class InvalidSchema(ValueError):
    """An announced arguments schema that is not one Cargo can check."""


def _describe(error: Mapping[str, Any]) -> str:
    loc = ".".join(str(part) for part in error["loc"])
    return f"{loc}: {error['msg']}" if loc else str(error["msg"])


def _message(error: ValidationError) -> str:
    """pydantic's words for the usual keywords, jsonschema's for the rest."""
    kind, expected, value = error.validator, error.validator_value, error.instance
    if kind == "type":
        wanted = [expected] if isinstance(expected, str) else list(expected)
        if "number" in wanted and isinstance(value, float) and not math.isfinite(value):
            return "Input should be a finite number"
        return "Input should be " + " or ".join(_TYPE_WORDS.get(t, t) for t in wanted)
    words = {"minimum": "greater than or equal to", "maximum": "less than or equal to",
             "exclusiveMinimum": "greater than", "exclusiveMaximum": "less than"}
    if kind in words:
        return f"Input should be {words[str(kind)]} {expected}"
    if kind == "minLength":
        return f"String should have at least {expected} character{'s' * (expected != 1)}"
    if kind == "maxLength":
        return f"String should have at most {expected} character{'s' * (expected != 1)}"
    if kind == "enum":
        return "Input should be " + " or ".join(repr(v) for v in expected)
    if kind == "const":
        return f"Input should be {expected!r}"
    return str(error.message)


def check_schema(schema: object) -> None:
    """Raise :class:`InvalidSchema` unless ``schema`` is an arguments schema as above.

    Announcements come over the broker: a schema must be a valid JSON Schema
    (2020-12), refer only inside itself (no ``$ref`` that could be fetched),
    and name its positional parameters among its properties.
    """
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise InvalidSchema('must be a JSON Schema object with "type": "object"')
    try:
        StrictValidator.check_schema(schema)
    except SchemaError as exc:
        raise InvalidSchema(f"not a valid JSON Schema: {exc.message}") from None
    for ref in _refs(schema):
        if not ref.startswith("#"):
            raise InvalidSchema(f"$ref {ref!r} points outside the schema")
    properties = schema.get("properties", {})
    for key in (POSITIONAL, POSITIONAL_ONLY):
        names = schema.get(key, [])
        if not isinstance(names, list) or not all(isinstance(n, str) and n in properties
                                                  for n in names):
            raise InvalidSchema(f"{key} must list names of its properties")
    if not set(schema.get(POSITIONAL_ONLY, [])) <= set(schema.get(POSITIONAL, [])):
        raise InvalidSchema(f"{POSITIONAL_ONLY} must be among {POSITIONAL}")
    if not isinstance(schema.get(VARARGS, False), bool):
        raise InvalidSchema(f"{VARARGS} must be true or false")


def _refs(node: object) -> Iterable[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


class ArgumentsSchema:
    """A task's announced arguments schema, ready to check calls against."""

    def __init__(self, schema: dict[str, Any]) -> None:
        check_schema(schema)
        self.schema = schema
        self._validator = StrictValidator(schema)
        self._properties: dict[str, Any] = schema.get("properties", {})
        self._positional: list[str] = list(schema.get(POSITIONAL, []))
        positional_only = set(schema.get(POSITIONAL_ONLY, []))
        self._keyword = {name for name in self._properties if name not in positional_only}
        self._varargs: bool = schema.get(VARARGS, False)
        self._any_keyword = schema.get("additionalProperties", True) is not False
        self._plain = self._plain_types()

    def _plain_types(self) -> tuple[str, ...] | None:
        """The parameters' JSON types when every one is positional, required and
        only typed (no bounds); a call of exactly those types needs no validator."""
        required = set(self.schema.get("required", []))
        types: list[str] = []
        for name in self._positional:
            prop = self._properties[name]
            if (name not in required or not isinstance(prop, dict)
                    or prop.get("type") not in _PLAIN_TYPES or set(prop) - _ANNOTATIONS):
                return None
            types.append(prop["type"])
        if len(types) != len(self._properties) or set(self.schema) - {
                "type", "title", "description", "properties", "required",
                "additionalProperties", POSITIONAL, POSITIONAL_ONLY, VARARGS}:
            return None
        return tuple(types)

    def validate(self, args: object, kwargs: object) -> None:
        """Raise :class:`InvalidArguments` listing every problem with this call."""
        if not isinstance(args, list | tuple) or not isinstance(kwargs, dict):
            raise InvalidArguments([{"loc": [], "msg": "args must be a list and kwargs an object"}])
        if self._plain is not None and not kwargs and len(args) == len(self._plain) and all(
                _fits(value, kind) for value, kind in zip(args, self._plain, strict=True)):
            return
        errors: list[dict[str, Any]] = []
        positional = self._positional
        if len(args) > len(positional) and not self._varargs:
            errors.append({"loc": ["args"], "msg": f"takes at most {len(positional)} positional "
                                                   f"argument(s) but {len(args)} were given"})
        source: dict[str, list[Any]] = {}
        values: dict[str, Any] = {}
        for index, (name, value) in enumerate(zip(positional, args, strict=False)):
            values[name] = value
            source[name] = ["args", index]
        for key, value in kwargs.items():
            if key in values:
                errors.append({"loc": ["kwargs", key],
                               "msg": "given both positionally and by keyword"})
            elif key in self._keyword or (key not in self._properties and self._any_keyword):
                values[key] = value
                source[key] = ["kwargs", key]
            else:
                errors.append({"loc": ["kwargs", key], "msg": "unexpected keyword argument"})
        missing: dict[str, None] = {}
        for error in self._validator.iter_errors(values):  # in the schema's order
            if error.validator == "additionalProperties" and not error.path:
                continue  # reported above, where the client put it
            if error.validator == "required" and not error.path:
                # One error per missing name; reported in the schema's order below.
                missing.update((n, None) for n in error.validator_value if n not in values)
                continue
            name, *rest = list(error.path) or [""]
            errors.append({"loc": [*source.get(str(name), [name]), *rest],
                           "msg": _message(error)})
        errors.extend({"loc": self._missing_loc(name),
                       "msg": f"missing required argument {name!r}"} for name in missing)
        if errors:
            raise InvalidArguments(errors)

    def _missing_loc(self, name: str) -> list[Any]:
        if name in self._positional:
            return ["args", self._positional.index(name)]
        return ["kwargs", name]


def _fits(value: object, kind: str) -> bool:
    if kind == "number":
        return _is_number(None, value)
    if kind == "integer":
        return _is_integer(None, value)
    if kind == "string":
        return isinstance(value, str)
    return isinstance(value, bool)

