"""Decoding JSON a client sent (REST bodies and WebSocket frames), in one place.

Python's ``json`` module is lenient where a gateway must not be: it accepts
``NaN`` and ``Infinity`` (and turns ``1e400`` into ``inf``), keeps the last of
duplicate keys, decodes ``"\\ud800"`` into a string no UTF-8 encoder accepts,
and raises ``RecursionError`` on deep nesting or a plain ``ValueError`` on an
integer of more than 4,300 digits. Each of those would otherwise surface later
as a 500 or a dead WebSocket; here every one is a :class:`JsonInputError`
with a message a client can act on.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Deeper documents are refused before anything walks them (pydantic, jsonschema,
# the task message encoder, a worker): a task's arguments never need more.
MAX_DEPTH = 64
# A JSON string, as an unrolled loop. No benchmark posts a body; kept as a bound on the
# event loop's stall under hostile input: timeit, a 1 MB string among 65+ brackets,
# 4.6 ms against 71 ms for the alternation '"(?:[^"\\]|\\.)*"'.
_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_INNERMOST = re.compile(rb"\[\]|\{\}")
# A \u escape of a UTF-16 surrogate: only then can a decoded string hold a lone one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class JsonInputError(ValueError):
    """A client's JSON that the gateway refuses; ``code`` is the contract's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _refuse_constant(name: str) -> Any:
    raise JsonInputError("malformed_json", f"{name} is not valid JSON (numbers must be finite)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonInputError("malformed_json", f"number {text[:40]!r} is out of range")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set[str] = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise JsonInputError("malformed_json", f"duplicate key {duplicate[:100]!r}")
    return doc


_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_refuse_constant,
                            object_pairs_hook=_unique_keys)


def _deeper_than(raw: bytes, max_depth: int) -> bool:
    """Whether ``[``/``{`` outside strings nest more than ``max_depth`` levels.

    Each round deletes the innermost pairs (a regex pass matches only pairs adjacent
    before it), so a balanced document empties in exactly its depth of rounds; all of
    it runs in C. Unbalanced input stops shrinking early and is left to the decoder.
    """
    brackets = _STRINGS.sub(b"", raw).translate(None, _NOT_BRACKETS)
    for _ in range(max_depth):
        brackets, removed = _INNERMOST.subn(b"", brackets)
        if not brackets or not removed:
            return False
    return _INNERMOST.search(brackets) is not None


def decode_json(raw: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON document in ``raw``, or :class:`JsonInputError`."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    # Counting brackets is cheap; the exact depth is only worked out when there are many.
    if data.count(b"[") + data.count(b"{") > max_depth and _deeper_than(data, max_depth):
        raise JsonInputError("malformed_json", f"JSON is nested more than {max_depth} levels deep")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonInputError("malformed_json", f"not valid UTF-8: {exc.reason} at byte "
                                               f"{exc.start}") from None
    try:
        doc = _DECODER.decode(text)
    except JsonInputError:
        raise
    except json.JSONDecodeError as exc:
        raise JsonInputError("malformed_json", f"not valid JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of over 4,300 digits
        raise JsonInputError("malformed_json", f"not acceptable JSON: {exc}") from None
    if _SURROGATE_ESCAPE.search(data):
        try:  # a surrogate pair decodes to one code point; a lone one cannot be encoded
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise JsonInputError("malformed_json",
                                 "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff)"
                                 ) from None
    return doc
