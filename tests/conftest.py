"""Session fixtures: a private RabbitMQ vhost and a real Celery worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from broker.settings import Settings, load_settings
from tests.support.catalog import announce_builtin_tasks
from tests.support.processes import Proc, start_worker
from tests.support.rabbit import base_url, broker_problem, private_vhost, run


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[Settings]:
    """Settings pointing at a private vhost on the real broker, deleted at the end."""
    problem = broker_problem(load_settings({"RABBITMQ_URL": base_url()}))
    if problem:
        pytest.fail(problem, pytrace=False)
    with private_vhost() as settings:
        yield settings


@pytest.fixture(scope="session")
def worker(rabbitmq: Settings) -> Iterator[Proc]:
    """One real Celery worker (prefork, two children) shared by the session."""
    proc = start_worker(rabbitmq, name="session-worker")
    yield proc
    proc.stop()


@pytest.fixture(autouse=True)
def builtin_catalog(request: pytest.FixtureRequest) -> None:
    """For tests on the session vhost: the built-in tasks are announced there on the
    session's task queue (as the test announcer, ``tests.support.catalog``) before
    each test, so gateways started in any way accept them without a worker (and a
    test that announced them on a queue of its own leaves no trace in the next);
    the real worker announces the same tasks."""
    if "rabbitmq" not in request.fixturenames:
        return
    run(announce_builtin_tasks(request.getfixturevalue("rabbitmq")))
