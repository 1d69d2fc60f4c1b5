"""``cargoctl``'s one-line errors: the gateway's error documents and socket errors, as text."""

from __future__ import annotations

import errno
import json
import socket
import ssl

import click
import pytest

from cargoctl.client_cmd import json_argument
from cargoctl.errors import (
    BadInput,
    CliError,
    connection_error,
    error_line,
    http_error,
    os_error_text,
    summarize_details,
)


def body(code: str, message: str, details: object = None) -> str:
    error: dict[str, object] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return json.dumps({"error": error})


def test_an_error_line_is_the_message_then_the_code_in_parentheses() -> None:
    assert error_line("no task with id 'x'", "task_not_found") == \
        "no task with id 'x' (task_not_found)"


def test_an_error_line_without_a_code_is_the_message_alone() -> None:
    assert error_line("cannot reach the gateway") == "cannot reach the gateway"


def test_an_error_line_folds_a_multi_line_message_into_one_line() -> None:
    assert error_line("first\n  second\r\nthird", "c") == "first second third (c)"


def test_the_gateways_error_document_becomes_its_message_and_code() -> None:
    error = http_error(404, "Not Found", body("unknown_task", "no task named 'x'"), "http://g/x")
    assert error.format_message() == "no task named 'x' (unknown_task)"
    assert error.exit_code == 1


def test_a_refused_token_says_how_to_give_one() -> None:
    error = http_error(401, "Unauthorized", body("unauthorized", "missing or wrong bearer token"),
                       "http://g/catalog")
    assert error.format_message() == ("missing or wrong bearer token; give the gateway's token "
                                      "with --token or CARGO_AUTH_TOKEN (unauthorized)")


def test_validation_details_are_appended_as_location_and_message() -> None:
    details = [{"loc": ["args", 0], "msg": "Input should be a valid number"},
               {"loc": ["kwargs", "steps"], "msg": "too big"}]
    error = http_error(422, None, body("invalid_arguments", "arguments do not fit", details),
                       "http://g")
    assert error.format_message() == ("arguments do not fit: args[0]: Input should be a valid "
                                      "number; kwargs.steps: too big (invalid_arguments)")


def test_a_long_detail_list_is_cut_to_the_first_three_and_a_count() -> None:
    details = [{"loc": ["args", i], "msg": "bad"} for i in range(5)]
    assert summarize_details(details) == "args[0]: bad; args[1]: bad; args[2]: bad; and 2 more"


def test_mapping_details_are_listed_as_key_and_values() -> None:
    assert summarize_details({"queues": ["cargo", "reports"]}) == "queues: cargo, reports"
    assert summarize_details({"task_id": "abc"}) == "task_id: abc"


def test_a_detail_the_message_already_names_is_not_repeated() -> None:
    url = "http://guest:***@rabbitmq:15672"
    error = http_error(503, "Service Unavailable", body(
        "management_unavailable", f"cannot read the queues from the RabbitMQ management API "
        f"at {url}: unreachable", {"management_url": url}), "http://g/queues")
    assert error.format_message() == ("cannot read the queues from the RabbitMQ management API "
                                      f"at {url}: unreachable (management_unavailable)")


def test_a_detail_only_part_of_a_word_in_the_message_is_still_given() -> None:
    assert summarize_details({"queue": "cargo"}, said="no task queue named 'cargo-x'") == \
        "queue: cargo"
    assert summarize_details({"queues": ["cargo"]}, said="no task queue named cargo") == \
        "queues: cargo"


def test_no_details_add_nothing() -> None:
    assert summarize_details(None) is None
    assert summarize_details([]) is None
    assert summarize_details({}) is None


def test_an_answer_that_is_not_the_gateways_error_shape_names_the_status_and_an_excerpt() -> None:
    error = http_error(502, "Bad Gateway", "<html>\n<b>upstream</b> down</html>", "http://g/x")
    assert error.format_message() == "http://g/x answered HTTP 502 Bad Gateway: " \
                                     "<html> <b>upstream</b> down</html>"


def test_an_empty_error_answer_names_the_status_alone() -> None:
    assert http_error(503, "Service Unavailable", "", "http://g/x").format_message() == \
        "http://g/x answered HTTP 503 Service Unavailable"


def test_a_refused_connection_reads_connection_refused() -> None:
    error = connection_error("http://127.0.0.1:8000",
                             ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"))
    assert error.format_message() == \
        "cannot reach the gateway at http://127.0.0.1:8000: connection refused"


def test_an_unknown_host_reads_as_a_name_that_does_not_resolve() -> None:
    text = os_error_text(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    assert text == "cannot resolve the host name (name or service not known)"


def test_a_certificate_failure_reads_as_tls_not_as_an_errno() -> None:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "self-signed certificate"
    assert os_error_text(exc) == "TLS failed: self-signed certificate"


def test_an_aiohttp_connector_error_is_read_through_its_os_error() -> None:
    class Wrapped(Exception):
        os_error = OSError(errno.EHOSTUNREACH, "whatever asyncio says")

    assert os_error_text(Wrapped()) == "no route to host"


def test_bad_input_exits_2_and_other_errors_exit_1() -> None:
    assert BadInput("x").exit_code == 2
    assert CliError("x").exit_code == 1
    assert isinstance(BadInput("x"), click.ClickException)


def test_json_arguments_of_the_right_kind_are_parsed() -> None:
    assert json_argument("[3, 4]", "--args", list) == [3, 4]
    assert json_argument('{"steps": 2}', "--kwargs", dict) == {"steps": 2}


def test_json_arguments_that_do_not_parse_say_where() -> None:
    with pytest.raises(BadInput) as caught:
        json_argument("[1,", "--args", list)
    assert caught.value.format_message() == \
        "--args is not valid JSON (Expecting value at line 1 column 4): '[1,'"


def test_json_arguments_of_the_wrong_kind_say_which_kind_is_wanted() -> None:
    with pytest.raises(BadInput) as caught:
        json_argument("[1]", "--kwargs", dict)
    assert caught.value.format_message() == \
        "--kwargs must be a JSON object, such as '{\"x\": 3}'; got '[1]'"
