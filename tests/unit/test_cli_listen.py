"""``cargoctl gateway``'s check of its address, with real sockets (nothing to mock)."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

import pytest

from cargoctl.listen import bind_error_line, listen_problem


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_port_someone_listens_on_is_already_in_use(taken_port: int) -> None:
    assert listen_problem("127.0.0.1", taken_port) == \
        f"cannot listen on 127.0.0.1:{taken_port}: address already in use"


def test_every_address_is_checked_so_a_taken_loopback_port_is_taken_for_all(
        taken_port: int) -> None:
    assert listen_problem("0.0.0.0", taken_port) == \
        f"cannot listen on 0.0.0.0:{taken_port}: address already in use"


def test_a_free_port_has_no_problem() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    assert listen_problem("127.0.0.1", port) is None


def test_a_host_that_does_not_resolve_says_so() -> None:
    problem = listen_problem("no-such-host.invalid", 8000)
    assert problem is not None
    assert problem.startswith("cannot listen on no-such-host.invalid:8000: cannot resolve the host")


def test_a_bind_error_reads_as_the_systems_words_in_lowercase() -> None:
    assert bind_error_line("h", 80, PermissionError(errno.EACCES, "whatever")) == \
        "cannot listen on h:80: permission denied"
