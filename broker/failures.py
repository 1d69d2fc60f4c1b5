"""Why the broker connection failed, in words an operator can act on.

aiormq reports a broker that refuses ``Connection.Open`` (a vhost that does not
exist, or that the user may not use) as ``InvalidFrameError: Expected ...
OpenOk, got <Connection.Close object ...>``: the reply code and text are lost.
py-amqp (Celery's client, already installed) keeps them, so after such a refusal
one more handshake through it (:func:`refusal_reason`) says exactly why:
``530 NOT_ALLOWED - vhost x not found``.

:func:`describe` turns an exception into a :class:`Failure`: a one-line reason
for logs and ``/readyz``, and whether the vhost itself was lost (deleted while
connected, or missing at connect), after which a stream of the vhost is a new
one and readers must not resume at their old offsets.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiormq.exceptions
import amqp.exceptions
import kombu

NOT_ALLOWED = 530
ACCESS_REFUSED = 403
CONNECTION_FORCED = 320


@dataclass(frozen=True)
class Failure:
    reason: str
    vhost_lost: bool = False


def _explain(code: int | None, text: str, vhost: str) -> Failure:
    lowered = text.lower()
    if code == NOT_ALLOWED and "not found" in lowered:
        return Failure(f"vhost {vhost!r} does not exist on the broker ({code} {text}): "
                       "create it (with permissions for the user) or fix RABBITMQ_URL",
                       vhost_lost=True)
    if code == NOT_ALLOWED:
        return Failure(f"the broker refuses vhost {vhost!r} to this user ({code} {text}): "
                       "grant permissions on it or fix RABBITMQ_URL")
    if code == ACCESS_REFUSED:
        return Failure(f"the broker refused the login ({code} {text}): "
                       "check the user and password in RABBITMQ_URL")
    if code == CONNECTION_FORCED and "vhost" in lowered and "deleted" in lowered:
        return Failure(f"vhost {vhost!r} was deleted ({code} {text})", vhost_lost=True)
    if code == CONNECTION_FORCED and "vhost" in lowered and "is down" in lowered:
        # Its processes stopped: it is being deleted (and may be back, new, before
        # the next connect could say it was missing), or it crashed and restarts
        # with its data. Counted as lost: rereading a stream that kept its data
        # costs a replay; resuming in a new one would skip every event.
        return Failure(f"vhost {vhost!r} is down on the broker ({code} {text})",
                       vhost_lost=True)
    return Failure(f"the broker closed the connection ({code} {text})")


def describe(exc: BaseException | None, vhost: str) -> Failure:
    """A reason for a failed or closed connection (None: closed without an error)."""
    if exc is None:
        return Failure("connection closed")
    if isinstance(exc, aiormq.exceptions.ConnectionClosed) and len(exc.args) >= 2:
        code, text = exc.args[0], str(exc.args[1])
        return _explain(code if isinstance(code, int) else None, text, vhost)
    if isinstance(exc, aiormq.exceptions.ConnectionNotAllowed):  # 530 after open
        return _explain(NOT_ALLOWED, str(exc), vhost)
    if isinstance(exc, aiormq.exceptions.ProbableAuthenticationError):
        return _explain(ACCESS_REFUSED, str(exc), vhost)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return Failure(f"no answer from the broker in time ({type(exc).__name__}: {exc})")
    return Failure(f"{type(exc).__name__}: {exc}")


def refused_open(exc: BaseException) -> bool:
    """aiormq's report of a ``Connection.Close`` in answer to ``Connection.Open``."""
    return (isinstance(exc, aiormq.exceptions.InvalidFrameError)
            and "got <Connection.Close" in str(exc))


def _handshake_refusal(url: str, timeout: float) -> tuple[int | None, str] | None:
    connection = kombu.Connection(url, connect_timeout=timeout)
    try:
        connection.connect()
    except amqp.exceptions.AMQPError as exc:
        return exc.reply_code, str(exc.reply_text)
    except Exception:  # unreachable now, or not AMQP: no better reason than the first
        return None
    finally:
        connection.release()
    return None


async def refusal_reason(url: str, vhost: str, timeout: float) -> Failure | None:
    """Ask the broker once more, through py-amqp, why it refused ``Connection.Open``."""
    try:
        refusal = await asyncio.wait_for(
            asyncio.to_thread(_handshake_refusal, url, timeout), timeout + 1)
    except TimeoutError:
        return None
    return None if refusal is None else _explain(refusal[0], refusal[1], vhost)
