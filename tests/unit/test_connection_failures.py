"""broker.failures: what an operator reads when the broker connection fails."""

from __future__ import annotations

import aiormq.exceptions
from pamqp import commands as spec

from broker.failures import describe, refused_open

VHOST = "cargo"


def test_a_vhost_deleted_under_an_open_connection_is_named_and_counts_as_lost() -> None:
    closed = aiormq.exceptions.ConnectionClosed(
        320, "CONNECTION_FORCED - vhost 'cargo' is deleted")
    failure = describe(closed, VHOST)
    assert failure.vhost_lost
    assert failure.reason.startswith("vhost 'cargo' was deleted (320 CONNECTION_FORCED")


def test_a_vhost_that_went_down_is_named_and_counts_as_lost() -> None:
    # RabbitMQ says "is down" instead of "is deleted" when the vhost's processes
    # stopped before it closed the connections; it may be back, new, at once.
    failure = describe(aiormq.exceptions.ConnectionClosed(
        320, "CONNECTION_FORCED - vhost 'cargo' is down"), VHOST)
    assert failure.vhost_lost
    assert failure.reason.startswith("vhost 'cargo' is down on the broker (320")


def test_a_missing_vhost_says_to_create_it_and_counts_as_lost() -> None:
    failure = describe(aiormq.exceptions.ConnectionNotAllowed(
        "NOT_ALLOWED - vhost cargo not found"), VHOST)
    assert failure.vhost_lost
    assert "vhost 'cargo' does not exist on the broker (530 NOT_ALLOWED" in failure.reason
    assert "create it" in failure.reason


def test_a_vhost_refused_to_the_user_asks_for_permissions_and_is_not_lost() -> None:
    failure = describe(aiormq.exceptions.ConnectionNotAllowed(
        "NOT_ALLOWED - access to vhost 'cargo' refused for user 'app'"), VHOST)
    assert not failure.vhost_lost
    assert "refuses vhost 'cargo' to this user (530" in failure.reason
    assert "grant permissions" in failure.reason


def test_a_refused_login_points_at_the_credentials() -> None:
    failure = describe(aiormq.exceptions.ProbableAuthenticationError(
        "ACCESS_REFUSED - Login was refused"), VHOST)
    assert "refused the login (403 ACCESS_REFUSED" in failure.reason
    assert "RABBITMQ_URL" in failure.reason


def test_aiormqs_report_of_a_refused_open_is_recognised_and_nothing_else_is() -> None:
    frame = spec.Connection.Close(reply_code=530, reply_text="NOT_ALLOWED - vhost x not found")
    refused = aiormq.exceptions.InvalidFrameError(
        f"Expected one of ['Connection.OpenOk'], got {frame!r}")
    assert refused_open(refused)
    assert not refused_open(aiormq.exceptions.InvalidFrameError("No frame length"))
    assert not refused_open(ConnectionRefusedError(111, "Connection refused"))


def test_other_failures_keep_their_type_and_message() -> None:
    assert describe(ConnectionRefusedError(111, "Connection refused"), VHOST).reason == (
        "ConnectionRefusedError: [Errno 111] Connection refused")
    assert describe(None, VHOST).reason == "connection closed"
