"""The gateway URL as people type it: what works, and what each mistake says."""

from __future__ import annotations

import pytest

from cargoctl.errors import BadInput
from cargoctl.gateway_url import checked_gateway_url, websocket_url


@pytest.mark.parametrize(("typed", "base"), [
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
    ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
    ("  https://cargo.example.com/api/ ", "https://cargo.example.com/api"),
    ("HTTP://Cargo:8000", "http://Cargo:8000"),
])
def test_a_url_with_http_or_https_is_used_without_its_trailing_slash(typed: str,
                                                                     base: str) -> None:
    assert checked_gateway_url(typed) == base


@pytest.mark.parametrize(("typed", "message"), [
    ("localhost:8000", "gateway URL 'localhost:8000' has no scheme: it needs http:// or "
                       "https:// (for example http://localhost:8000)"),
    ("127.0.0.1:8000", "gateway URL '127.0.0.1:8000' has no scheme: it needs http:// or "
                       "https:// (for example http://127.0.0.1:8000)"),
    ("ftp://cargo", "gateway URL 'ftp://cargo' must start with http:// or https://, not ftp://"),
    ("ws://cargo/ws", "gateway URL 'ws://cargo/ws' must start with http:// or https://, "
                      "not ws://"),
    ("http://", "gateway URL 'http://' names no host"),
    ("http://cargo:99999", "gateway URL 'http://cargo:99999' has an invalid port"),
    ("http://cargo/?x=1", "gateway URL 'http://cargo/?x=1' must not carry a query or fragment"),
    ("", "the gateway URL is empty; give one such as http://127.0.0.1:8000"),
])
def test_a_url_that_cannot_work_says_why_as_bad_input(typed: str, message: str) -> None:
    with pytest.raises(BadInput) as caught:
        checked_gateway_url(typed)
    assert caught.value.format_message() == message


def test_the_websocket_url_keeps_the_scheme_secure_when_the_gateway_is() -> None:
    assert websocket_url("http://127.0.0.1:8000") == "ws://127.0.0.1:8000/ws"
    assert websocket_url("https://cargo.example.com/api") == "wss://cargo.example.com/api/ws"
