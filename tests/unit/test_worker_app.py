"""The Celery app's configuration and the worker command line (no broker needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import structlog.testing

from broker.settings import load_settings
from broker.topology import TASKS_EXCHANGE, build_topology
from workers.app import create_app
from workers.lifecycle import queue_of
from workers.runner import worker_argv

BIN = Path(sys.executable).parent


def test_by_default_the_app_registers_exactly_the_built_in_tasks_under_their_names() -> None:
    app = create_app(load_settings({}))
    ours = {name for name in app.tasks if not name.startswith("celery.")}
    assert ours == {"calculate_distance", "sleep", "memory_leak_task"}


def test_the_app_acks_late_consumes_quorum_queues_and_keeps_no_results() -> None:
    settings = load_settings({"CARGO_TASK_QUEUE": "jobs",
                              "RABBITMQ_URL": "amqp://u:p@rabbit:5672/v"})
    conf = create_app(settings).conf
    assert conf.broker_url == "amqp://u:p@rabbit:5672/v"
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_detect_quorum_queues is True
    assert conf.broker_transport_options == {"confirm_publish": True}
    assert conf.task_ignore_result is True
    assert conf.result_backend is None
    assert conf.accept_content == ["json"]
    assert conf.task_serializer == conf.result_serializer == "json"
    assert conf.task_default_queue == "jobs"
    assert conf.task_default_exchange == TASKS_EXCHANGE
    assert conf.task_default_exchange_type == "topic"
    [queue] = conf.task_queues
    spec = build_topology(settings).queue("jobs")
    assert queue.name == "jobs"
    assert queue.queue_arguments == spec.arguments
    assert queue.exchange.name == TASKS_EXCHANGE


def test_the_remote_control_queue_is_not_exclusive_so_a_failed_over_worker_can_redeclare_it(
) -> None:
    conf = create_app(load_settings({})).conf
    assert conf.control_queue_exclusive is False
    assert conf.control_queue_durable is False
    assert 0 < conf.control_queue_expires <= 60


def test_importing_the_app_module_reads_no_configuration() -> None:
    env = {**os.environ, "RABBITMQ_URL": "not a url", "CARGO_NO_SUCH_SETTING": "1"}
    result = subprocess.run([sys.executable, "-c", "import workers.app, workers.runner"],
                            env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("variable", "value"), [("RABBITMQ_URL", "http://rabbit/"),
                                                 ("CARGO_TASK_QUEUE", ""),
                                                 ("CARGO_NO_SUCH_SETTING", "1"),
                                                 ("CARGO_TASK_MODULES", "nosuchmodule")])
def test_the_celery_cli_stops_on_bad_configuration_naming_the_variable(
    variable: str, value: str
) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CARGO_") and k != "RABBITMQ_URL"}
    env[variable] = value
    result = subprocess.run([str(BIN / "celery"), "-A", "workers.app", "worker"], env=env,
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode != 0
    assert variable in result.stderr


def test_the_worker_command_line_consumes_its_tasks_queues_without_mingle_or_gossip() -> None:
    argv = worker_argv(load_settings({"CARGO_TASK_QUEUE": "jobs"}), concurrency=3,
                       hostname="w1@%h", extra_args=["--max-tasks-per-child=10"],
                       queues=["jobs"])
    assert argv[0] == "worker"
    assert {"--pool=prefork", "--concurrency=3", "--queues=jobs", "--without-mingle",
            "--without-gossip", "--hostname=w1@%h"} <= set(argv)
    assert argv[-1] == "--max-tasks-per-child=10"


def test_the_worker_command_line_consumes_the_worker_queues_setting_over_its_tasks_queues(
) -> None:
    settings = load_settings({"CARGO_WORKER_QUEUES": "cargo,reports"})
    assert "--queues=cargo,reports" in worker_argv(settings, 2, None, [], queues=["other"])
    assert "--queues=a,b" in worker_argv(load_settings({}), 2, None, [], queues=["a", "b"])


def test_a_countdown_routing_key_still_names_the_queue_in_events() -> None:
    from celery.app.task import Context

    delayed = "0." * 26 + "1.0.cargo.batch"
    assert queue_of(Context(delivery_info={"routing_key": delayed}), None) == "cargo.batch"
    assert queue_of(Context(delivery_info={"routing_key": "cargo"}), None) == "cargo"
    assert queue_of(Context(delivery_info=None), "default") == "default"


def test_a_task_still_succeeds_when_its_events_cannot_be_published() -> None:
    # Nothing listens on port 1: every event publish fails (connection refused).
    settings = load_settings({"RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:1/",
                              "CARGO_CONNECT_TIMEOUT": "0.5", "CARGO_PUBLISH_TIMEOUT": "0.5"})
    app = create_app(settings)
    app.finalize()
    with structlog.testing.capture_logs() as logs:
        result = app.tasks["calculate_distance"].apply(args=(3, 4))
    assert result.get() == 5.0
    # started travels with succeeded (workers.event_window): one message, one warning.
    assert any(entry["event"] == "events.publish_failed" and entry["state"] == "succeeded"
               and entry["events"] == 2 for entry in logs), logs


def test_cargoctl_worker_queues_replaces_the_worker_queues_setting() -> None:
    from workers.runner import with_worker_queues

    settings = with_worker_queues(load_settings({"CARGO_WORKER_QUEUES": "old"}), "cargo,reports")
    assert settings.worker_queue_names == ("cargo", "reports")
    assert with_worker_queues(settings, None) is settings


@pytest.mark.parametrize("queues", ["cargo.events", "reports.XQ", "bad name", ","])
def test_cargoctl_worker_refuses_a_queue_it_could_not_declare_safely(queues: str) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CARGO_") and k != "RABBITMQ_URL"}
    result = subprocess.run([str(BIN / "cargoctl"), "worker", "--queues", queues], env=env,
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 2
    assert "--queues" in result.stderr
