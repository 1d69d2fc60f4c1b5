"""The one decoder of client JSON (gateway/jsonbody.py): what it refuses and what it keeps."""

from __future__ import annotations

import json

import pytest

from gateway.jsonbody import MAX_DEPTH, JsonInputError, decode_json


def nested(depth: int, inner: str = "1") -> bytes:
    return ("[" * depth + inner + "]" * depth).encode()


def test_nesting_up_to_the_limit_is_decoded_and_one_level_more_is_refused() -> None:
    assert decode_json(nested(MAX_DEPTH)) == json.loads(nested(MAX_DEPTH))
    with pytest.raises(JsonInputError, match=f"nested more than {MAX_DEPTH} levels"):
        decode_json(nested(MAX_DEPTH + 1))


def test_objects_and_arrays_count_alike_towards_the_depth() -> None:
    doc = '{"a": ' * 40 + nested(40).decode() + "}" * 40
    with pytest.raises(JsonInputError, match="nested more than"):
        decode_json(doc)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps({"s": "[" * 500 + '\\"{' * 100, "t": ["]" * 300]})
    assert decode_json(text) == json.loads(text)


def test_many_shallow_arrays_are_not_deep() -> None:
    doc = json.dumps([[[i]] for i in range(5000)])
    assert decode_json(doc) == json.loads(doc)


def test_nesting_a_thousand_deep_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(JsonInputError):
        decode_json(nested(1000))
    with pytest.raises(JsonInputError):
        decode_json(nested(100_000), max_depth=10**6)  # past the guard: the decoder's own


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"x": -Infinity}', "[1e400]", "-1e999"])
def test_non_finite_numbers_are_refused(text: str) -> None:
    with pytest.raises(JsonInputError, match=r"finite|out of range"):
        decode_json(text)


def test_an_integer_of_more_than_4300_digits_is_refused_and_one_of_4300_is_kept() -> None:
    assert decode_json("9" * 4300) == int("9" * 4300)
    with pytest.raises(JsonInputError, match=r"limit \(4300 digits\)"):
        decode_json("9" * 4301)


def test_duplicate_keys_are_refused_naming_the_key() -> None:
    with pytest.raises(JsonInputError, match="duplicate key 'b'"):
        decode_json('{"a": 1, "x": {"b": 1, "b": 2}}')


def test_a_lone_surrogate_is_refused_and_a_surrogate_pair_is_kept() -> None:
    assert decode_json('["\\ud83d\\ude00"]') == ["\U0001f600"]
    for text in ('["\\ud800"]', '{"\\udfff": 1}', '["\\ude00\\ud83d"]'):
        with pytest.raises(JsonInputError, match="lone UTF-16 surrogate"):
            decode_json(text)


def test_an_escaped_backslash_before_u_d8_is_not_mistaken_for_a_surrogate() -> None:
    assert decode_json('["\\\\ud800"]') == ["\\ud800"]


def test_invalid_utf8_is_refused_saying_where() -> None:
    with pytest.raises(JsonInputError, match=r"not valid UTF-8.* at byte 7"):
        decode_json(b'{"a": "\xff"}')


def test_every_refusal_has_the_malformed_json_code() -> None:
    for text in (nested(100), b"NaN", b"9" * 5000, b'{"a":1,"a":1}', b'"\\ud800"', b"\xff", b"{"):
        with pytest.raises(JsonInputError) as failure:
            decode_json(text)
        assert failure.value.code == "malformed_json"
