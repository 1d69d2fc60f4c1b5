"""Which RabbitMQ a test session uses (tests.support.broker_choice): pure logic, no Docker."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.broker_choice import (
    NO_BROKER,
    RABBITMQ_IMAGE,
    BrokerChoice,
    BrokerSource,
    choose_broker,
)


def probe(answer: bool, calls: list[str], name: str) -> Callable[[], bool]:
    def called() -> bool:
        calls.append(name)
        return answer
    return called


def test_a_set_rabbitmq_url_is_used_without_probing_anything() -> None:
    calls: list[str] = []
    choice = choose_broker("amqp://u:p@rabbit:5672/", probe(True, calls, "local"),
                           probe(True, calls, "docker"))
    assert choice == BrokerChoice(BrokerSource.ENVIRONMENT)
    assert calls == []


def test_without_rabbitmq_url_the_local_broker_is_used_when_it_answers_and_docker_is_not_asked(
) -> None:
    calls: list[str] = []
    choice = choose_broker(None, probe(True, calls, "local"), probe(True, calls, "docker"))
    assert choice == BrokerChoice(BrokerSource.LOCAL)
    assert calls == ["local"]


@pytest.mark.parametrize("environment_url", [None, ""])
def test_without_a_local_broker_a_reachable_docker_gives_a_container(
    environment_url: str | None,
) -> None:
    calls: list[str] = []
    choice = choose_broker(environment_url, probe(False, calls, "local"),
                           probe(True, calls, "docker"))
    assert choice == BrokerChoice(BrokerSource.CONTAINER)
    assert calls == ["local", "docker"]


def test_with_no_broker_and_no_docker_the_problem_names_scripts_rabbitmq_sh() -> None:
    choice = choose_broker(None, lambda: False, lambda: False)
    assert choice.source is None
    assert choice.problem == NO_BROKER
    assert "scripts/rabbitmq.sh" in NO_BROKER
    assert "RABBITMQ_URL" in NO_BROKER


def test_the_report_line_says_which_broker_and_never_a_password() -> None:
    assert BrokerChoice(BrokerSource.LOCAL).describe() == "the local broker at 127.0.0.1:5672"
    line = BrokerChoice(BrokerSource.ENVIRONMENT).describe("amqp://cargo:s3cret@rabbit:5672/")
    assert "RABBITMQ_URL" in line
    assert "rabbit:5672" in line
    assert "s3cret" not in line
    container = BrokerChoice(BrokerSource.CONTAINER).describe("amqp://guest:guest@localhost:32771/")
    assert RABBITMQ_IMAGE in container
    assert "localhost:32771" in container
    assert "none" in BrokerChoice(None, NO_BROKER).describe()
