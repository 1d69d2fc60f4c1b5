"""Session fixtures: the session's RabbitMQ, a private vhost on it and a real Celery worker.

Which RabbitMQ (``tests.support.broker_choice``): ``RABBITMQ_URL`` if set; else the
local broker at 127.0.0.1:5672 if it answers; else a testcontainers RabbitMQ where
Docker is reachable; else the tests that need one fail saying how to start one. The
report's header and its summary say which one the session used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from broker.settings import Settings, load_settings
from tests.support.broker_choice import BrokerChoice, BrokerSource, choose_broker
from tests.support.catalog import announce_builtin_tasks
from tests.support.processes import Proc, start_worker
from tests.support.rabbit import base_url, broker_problem, private_vhost, run
from tests.support.rabbit_container import (
    docker_reachable,
    local_broker_answers,
    rabbitmq_container,
)

CHOICE = pytest.StashKey[BrokerChoice]()
USED = pytest.StashKey[str]()


def broker_choice(config: pytest.Config) -> BrokerChoice:
    """Decided once per session, at its start (the probes take milliseconds)."""
    if CHOICE not in config.stash:
        config.stash[CHOICE] = choose_broker(os.environ.get("RABBITMQ_URL"),
                                             local_broker_answers, docker_reachable)
    return config.stash[CHOICE]


def pytest_report_header(config: pytest.Config) -> str:
    choice = broker_choice(config)
    url = os.environ.get("RABBITMQ_URL") if choice.source is BrokerSource.ENVIRONMENT else None
    return f"RabbitMQ: {choice.describe(url)}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    if USED in config.stash:
        terminalreporter.write_line(f"RabbitMQ used: {config.stash[USED]}")


@pytest.fixture(scope="session")
def broker(pytestconfig: pytest.Config) -> Iterator[str | None]:
    """The session's broker URL, its container started if it is one; None when there
    is none (the ``rabbitmq`` fixture fails then, saying how to start one).

    A container's addresses go into ``RABBITMQ_URL`` and ``CARGO_MANAGEMENT_URL`` for
    the session (restored afterwards), so every helper that reads them
    (``tests.support.rabbit``) and every process the tests start follow it.
    """
    choice = broker_choice(pytestconfig)
    if choice.source is None:
        yield None
        return
    with ExitStack() as stack:
        if choice.source is BrokerSource.CONTAINER:
            address = stack.enter_context(rabbitmq_container())
            patch = stack.enter_context(pytest.MonkeyPatch.context())
            patch.setenv("RABBITMQ_URL", address.rabbitmq_url)
            patch.setenv("CARGO_MANAGEMENT_URL", address.management_url)
        url = base_url()
        pytestconfig.stash[USED] = choice.describe(url)
        yield url


@pytest.fixture(autouse=True)
def broker_for_tests_that_reach_it(request: pytest.FixtureRequest) -> None:
    """Tests outside tests/unit may reach the broker through ``tests.support.rabbit``
    directly rather than the ``rabbitmq`` fixture: the session's broker is settled
    (its container started) before any of them runs. A unit test never needs one."""
    if "unit" not in request.node.path.relative_to(request.config.rootpath).parts:
        request.getfixturevalue("broker")


@pytest.fixture(scope="session")
def rabbitmq(broker: str | None, pytestconfig: pytest.Config) -> Iterator[Settings]:
    """Settings pointing at a private vhost on the session's broker, deleted at the end."""
    if broker is None:
        pytest.fail(broker_choice(pytestconfig).problem or "no RabbitMQ", pytrace=False)
    problem = broker_problem(load_settings({"RABBITMQ_URL": broker, **{
        k: v for k, v in os.environ.items() if k == "CARGO_MANAGEMENT_URL"}}))
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
