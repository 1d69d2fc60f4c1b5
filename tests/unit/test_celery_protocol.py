"""The Celery protocol v2 encoder and decoder, against Celery's own encoder."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import celery
import pytest

from broker.celery_protocol import CONTENT_TYPE, ProtocolError, check_task, encode_task


def test_the_encoder_writes_the_headers_and_body_celery_itself_writes() -> None:
    app = celery.Celery(set_as_current=False)
    theirs = app.amqp.as_task_v2("id-1", "calculate_distance", args=(3, 4), kwargs={"k": 1})
    ours = encode_task("id-1", "calculate_distance", [3, 4], {"k": 1})
    assert set(ours.headers) == set(theirs.headers)
    for key in ("lang", "task", "id", "root_id", "parent_id", "group", "retries",
                "timelimit", "eta", "expires", "kwargsrepr"):
        assert ours.headers[key] == theirs.headers[key], key
    assert ours.headers["argsrepr"] == "[3, 4]"  # the JSON list the body carries
    args, kwargs, embed = theirs.body
    assert json.loads(ours.body) == [list(args), kwargs, embed]


def test_an_encoded_task_decodes_back_with_its_arguments() -> None:
    eta = datetime(2030, 1, 1, tzinfo=UTC)
    message = encode_task("id-2", "sleep", [1.5], {"steps": 3}, eta=eta, retries=2)
    decoded = check_task(message.body, message.headers, {"content_type": CONTENT_TYPE})
    assert (decoded.task_id, decoded.name, decoded.args, decoded.kwargs, decoded.retries) == (
        "id-2", "sleep", [1.5], {"steps": 3}, 2)
    assert decoded.headers["eta"] == eta.isoformat()


@pytest.mark.parametrize(("body", "headers", "content_type"), [
    (b"[[], {}, {}]", {}, "application/json"),  # no id/task headers
    (b"\xff", {"id": "x", "task": "t"}, "application/json"),
    (b'{"args": []}', {"id": "x", "task": "t"}, "application/json"),
    (b"[[], {}, {}]", {"id": "x", "task": "t"}, "application/x-python-serialize"),
])
def test_anything_but_a_json_protocol_v2_message_is_a_protocol_error(
    body: bytes, headers: dict[str, str], content_type: str
) -> None:
    with pytest.raises(ProtocolError):
        check_task(body, headers, {"content_type": content_type})


def test_naive_datetimes_and_non_list_args_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        encode_task("x", "t", [], eta=datetime(2030, 1, 1))
    with pytest.raises(TypeError):
        encode_task("x", "t", "not a list")  # type: ignore[arg-type]
