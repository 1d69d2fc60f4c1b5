"""The benchmark peers and helpers shared by the sections: one way each."""

from __future__ import annotations

import pytest

from bench.peers import celery_bare, celery_rpc
from bench.vhost import url_with_vhost
from broker.settings import load_settings

SETTINGS = load_settings({"RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/x"})

# A test artefact, not Cargo's bug: workers.builtin's tasks are Celery shared tasks,
# which join every app made in the process, and the peers name theirs as Cargo's
# (calculate_distance). Once another test imported workers.builtin, the peer apps
# built here meet Cargo's task; no bench or Cargo process imports both.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Task name 'calculate_distance' is already registered"
    ":celery.exceptions.DuplicateTaskNameWarning")


def test_the_rpc_peer_is_the_bare_app_with_rpc_results_on_its_own_queue_of_the_same_kind() -> None:
    bare, rpc = celery_bare.create_app(SETTINGS), celery_rpc.create_app(SETTINGS)
    ((bare_queue,), (rpc_queue,)) = bare.conf.task_queues, rpc.conf.task_queues
    assert rpc_queue.name == rpc.conf.task_default_queue == celery_rpc.QUEUE != bare_queue.name
    # The same arguments but the dead-letter routing key, which names the queue.
    assert {**rpc_queue.queue_arguments, "x-dead-letter-routing-key": None} == {
        **bare_queue.queue_arguments, "x-dead-letter-routing-key": None}
    assert rpc_queue.queue_arguments["x-dead-letter-routing-key"].startswith(celery_rpc.QUEUE)
    assert bare.conf.result_backend is None
    assert bare.conf.task_ignore_result is True
    assert (rpc.conf.result_backend, rpc.conf.task_ignore_result) == ("rpc://", False)
    for setting in ("task_acks_late", "task_reject_on_worker_lost", "worker_prefetch_multiplier",
                    "broker_transport_options", "task_serializer", "accept_content"):
        assert rpc.conf[setting] == bare.conf[setting], setting
    assert set(rpc.tasks) & set(bare.tasks) >= {celery_rpc.TASK_NAME}


def test_a_vhost_url_keeps_the_credentials_and_host_and_quotes_the_vhost() -> None:
    assert (url_with_vhost("amqp://u:p@h:5672/", "cargo-bench/1")
            == "amqp://u:p@h:5672/cargo-bench%2F1")
