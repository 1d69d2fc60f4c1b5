"""The gateway's start-up with and without CARGO_AUTH_TOKEN, as a real `cargoctl gateway`.

Without a token the API is open, and the process says so in its log at WARNING; a token it
refuses stops it with the variable's name and why, never the value.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
from pathlib import Path

import pytest

from broker.settings import Settings
from tests.support.eventually import eventually_sync
from tests.support.processes import Proc, process_env

pytestmark = pytest.mark.integration

CARGOCTL = Path(sys.executable).parent / "cargoctl"
TOKEN = "startup-test-token-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_gateway(settings: Settings, name: str, **env: str) -> tuple[Proc, int]:
    port = _free_port()
    proc = Proc(name, [str(CARGOCTL), "gateway", "--host", "127.0.0.1", "--port", str(port)],
                process_env(settings, CARGO_LOG_FORMAT="json", **env))
    return proc, port


def _wait_output(proc: Proc, text: str, timeout: float = 60) -> str:
    # The callers assert on the output, so a timeout hands it over as it is.
    with contextlib.suppress(TimeoutError):
        return eventually_sync(proc.output, timeout, f"{text!r} in the output",
                               until=lambda output: text in output or not proc.alive())
    return proc.output()


def test_a_gateway_without_a_token_warns_at_start_that_the_api_is_open(
    rabbitmq: Settings,
) -> None:
    proc, _port = _start_gateway(rabbitmq, "gateway-open")
    try:
        output = _wait_output(proc, "gateway.auth_disabled")
    finally:
        proc.stop()
    lines = [json.loads(line) for line in output.splitlines()
             if "gateway.auth_disabled" in line]
    assert lines, output[-3000:]
    assert lines[0]["level"] == "warning"
    assert "CARGO_AUTH_TOKEN is not set" in lines[0]["detail"]
    assert "open" in lines[0]["detail"]


def test_a_gateway_with_a_token_starts_without_the_open_api_warning(
    rabbitmq: Settings,
) -> None:
    proc, _port = _start_gateway(rabbitmq, "gateway-guarded", CARGO_AUTH_TOKEN=TOKEN)
    try:
        output = _wait_output(proc, "gateway.starting")
        assert proc.alive(), output[-3000:]
    finally:
        proc.stop()
    assert "gateway.starting" in output
    assert "gateway.auth_disabled" not in output


@pytest.mark.parametrize("token",
                         ["short-secret-1", " " * 24, "spaced s3cr3t t0ken-xyzzy 0123456789"],
                         ids=["too-short", "only-spaces", "inner-spaces"])
def test_a_gateway_refusing_its_token_names_the_variable_and_never_prints_the_value(
    rabbitmq: Settings, token: str,
) -> None:
    proc, _port = _start_gateway(rabbitmq, "gateway-bad-token", CARGO_AUTH_TOKEN=token)
    try:
        proc.popen.wait(60)
        output = proc.output()
    finally:
        proc.stop()
    assert proc.popen.returncode == 2, output[-3000:]
    assert "CARGO_AUTH_TOKEN" in output
    for word in token.split():
        assert word not in output
    assert repr(token) not in output

