"""Configuration: defaults, RABBITMQ_URL, the management URL, loud failures, the docs table,
and each process validating only the settings it reads."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from broker.settings import (
    PROCESSES,
    BrokerSettings,
    CanarySettings,
    CargoSettings,
    ConfigError,
    GatewaySettings,
    Settings,
    WorkerSettings,
    env_name,
    known_variables,
    load_settings,
)

CONFIGURATION_DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

# One malformed value per variable; every field of every process's settings must have one.
MALFORMED = {
    "RABBITMQ_URL": "http://127.0.0.1:5672/",
    "CARGO_MANAGEMENT_URL": "ftp://127.0.0.1:15672",
    "CARGO_TASK_QUEUE": "",
    "CARGO_QUEUE_MAX_LENGTH": "lots",
    "CARGO_DELIVERY_LIMIT": "0",
    "CARGO_EVENTS_MAX_AGE": "1 day",
    "CARGO_EVENTS_MAX_BYTES": "-1",
    "CARGO_EVENTS_SEGMENT_BYTES": "0",
    "CARGO_PUBLISH_TIMEOUT": "0",
    "CARGO_PUBLISH_OUTCOME_TIMEOUT": "never",
    "CARGO_CONNECT_TIMEOUT": "fast",
    "CARGO_RECONNECT_INTERVAL": "61",
    "CARGO_BROKER_HEARTBEAT": "601",
    "CARGO_BROKER_CHECK_INTERVAL": "0",
    "CARGO_MAX_BODY_BYTES": "0",
    "CARGO_TASK_STORE_SIZE": "-5",
    "CARGO_EVENT_BUFFER_SIZE": "0",
    "CARGO_EVENTS_REPLAY_SECONDS": "-1",
    "CARGO_RETRY_AFTER_SECONDS": "0",
    "CARGO_WS_SEND_QUEUE": "many",
    "CARGO_AUTH_TOKEN": "short",
    "CARGO_GATEWAY_URL": "ws://127.0.0.1:8000",
    "CARGO_MAX_RETRIES": "-1",
    "CARGO_RETRY_BACKOFF": "0",
    "CARGO_RETRY_BACKOFF_MAX": "soon",
    "CARGO_MEMORY_LIMIT_MB": "0",
    "CARGO_TIME_LIMIT": "-5",
    "CARGO_TASK_LIMITS": "memory_leak_task=64",
    "CARGO_TASK_MODULES": "not a module",
    "CARGO_WORKER_QUEUES": "a,,b",
    "CARGO_CATALOG_INTERVAL": "0",
    "CARGO_MEMORY_CHECK_INTERVAL": "2",
    "CARGO_EVENTS_MERGE_WINDOW": "-1",
    "CARGO_EVENTS_RELAY_MIN_RUNNING": "0",
    "CARGO_WORKER_METRICS_PORT": "70000",
    "CARGO_WORKER_HEARTBEAT_FILE": "relative/heartbeat.json",
    "CARGO_WORKER_HEARTBEAT_INTERVAL": "0",
    "CARGO_WORKER_HEARTBEAT_MAX_AGE": "-1",
    "CARGO_BRIDGE_QUEUES": "default.DQ",
    "CARGO_BRIDGE_PREFETCH": "0",
    "CARGO_BRIDGE_MAX_PRIORITY": "256",
    "CARGO_BRIDGE_DEAD_MESSAGE_TTL": "forever",
    "CARGO_BRIDGE_METRICS_PORT": "-1",
    "CARGO_BRIDGE_HEARTBEAT_FILE": "bridge.json",
    "CARGO_BRIDGE_HEARTBEAT_INTERVAL": "0",
    "CARGO_BRIDGE_HEARTBEAT_MAX_AGE": "never",
    "CARGO_CANARY_PUSHGATEWAY": "ftp://pushgateway:9091",
    "CARGO_CANARY_MAX_RESTARTS": "-1",
    "CARGO_CANARY_WORKER_SELECTOR": "",
    "CARGO_CANARY_NAMESPACE": "Not_A_Namespace",
    "CARGO_LOG_LEVEL": "LOUD",
    "CARGO_LOG_FORMAT": "xml",
}


@pytest.fixture(autouse=True)
def no_cargo_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests pass their variables explicitly; the caller's environment stays out."""
    for name in os.environ:
        if name.startswith("CARGO_") or name == "RABBITMQ_URL":
            monkeypatch.delenv(name)


def env_names(kind: type[CargoSettings] = Settings) -> set[str]:
    return {env_name(kind, name) for name in kind.model_fields}


def documented_configuration_rows() -> dict[str, tuple[str, str, str]]:
    """``{variable: (read-by cell, default cell, meaning cell)}`` from the table of
    docs/configuration.md."""
    text = CONFIGURATION_DOC.read_text(encoding="utf-8")
    section = text.split("# Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, str, str]] = {}
    for line in section.splitlines():
        match = re.match(r"^\|\s*`([A-Z_]+)`\s*\|([^|]*)\|(.*)\|(.*)\|\s*$", line)
        if match:
            rows[match[1]] = (match[2].strip(), match[3].strip(), match[4].strip())
    return rows


def test_with_no_variables_every_setting_has_its_default() -> None:
    settings = load_settings({})
    assert settings == Settings.model_validate({})
    assert settings.rabbitmq_url == "amqp://guest:guest@127.0.0.1:5672/"
    assert settings.management_url is None
    assert settings.task_queue == "cargo"
    assert settings.delivery_limit == 5
    assert settings.queue_max_length == 100_000
    assert settings.events_max_age == "1D"
    assert settings.auth_token is None
    assert settings.log_level == "INFO"


def test_settings_come_from_the_mapping_given_not_from_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CARGO_TASK_QUEUE", "from-the-environment")
    assert load_settings({}).task_queue == "cargo"
    assert load_settings().task_queue == "from-the-environment"


def test_each_variable_is_read_under_its_documented_name() -> None:
    settings = load_settings({
        "RABBITMQ_URL": "amqps://u:p@rabbit.example:5671/prod",
        "CARGO_TASK_QUEUE": "jobs",
        "CARGO_DELIVERY_LIMIT": "7",
        "CARGO_PUBLISH_TIMEOUT": "2.5",
        "CARGO_LOG_LEVEL": "debug",
    })
    assert settings.rabbitmq_url == "amqps://u:p@rabbit.example:5671/prod"
    assert settings.task_queue == "jobs"
    assert settings.delivery_limit == 7
    assert settings.publish_timeout == 2.5
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(("url", "vhost"), [
    ("amqp://guest:guest@127.0.0.1:5672/", "/"),
    ("amqp://guest:guest@127.0.0.1:5672", "/"),
    ("amqp://guest:guest@127.0.0.1:5672/%2F", "/"),
    ("amqp://guest:guest@127.0.0.1:5672/cargo", "cargo"),
    ("amqp://guest:guest@127.0.0.1:5672/cargo-test-1a2b", "cargo-test-1a2b"),
    ("amqp://guest:guest@127.0.0.1:5672/team%2Fjobs", "team/jobs"),
])
def test_the_vhost_is_the_path_of_rabbitmq_url(url: str, vhost: str) -> None:
    assert load_settings({"RABBITMQ_URL": url}).vhost == vhost


def test_the_management_url_defaults_to_the_broker_host_on_port_15672() -> None:
    settings = load_settings({"RABBITMQ_URL": "amqp://alice:s3cret@rabbit.example:5672/prod"})
    assert settings.management_api == "http://alice:s3cret@rabbit.example:15672"


def test_a_tls_broker_gets_an_https_management_url() -> None:
    settings = load_settings({"RABBITMQ_URL": "amqps://alice:s3cret@rabbit.example:5671/"})
    assert settings.management_api == "https://alice:s3cret@rabbit.example:15672"


def test_credentials_in_the_derived_management_url_stay_percent_encoded() -> None:
    settings = load_settings({"RABBITMQ_URL": "amqp://al%40ce:p%2Fw%3Ad@rabbit.example/"})
    assert settings.management_api == "http://al%40ce:p%2Fw%3Ad@rabbit.example:15672"


def test_a_url_without_credentials_uses_guest_for_the_management_api() -> None:
    settings = load_settings({"RABBITMQ_URL": "amqp://rabbit.example/"})
    assert settings.management_api == "http://guest:guest@rabbit.example:15672"


def test_cargo_management_url_overrides_the_derived_one() -> None:
    settings = load_settings({
        "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/",
        "CARGO_MANAGEMENT_URL": "https://admin:pw@mgmt.example:443/rabbit/",
    })
    assert settings.management_api == "https://admin:pw@mgmt.example:443/rabbit"


@pytest.mark.parametrize(("variable", "value"), sorted(MALFORMED.items()))
def test_a_malformed_value_fails_naming_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(variable)) as failure:
        load_settings({variable: value})
    if variable == "CARGO_AUTH_TOKEN":  # a secret: never echoed (see the token tests below)
        assert value not in str(failure.value)
    else:
        assert repr(value) in str(failure.value)


def test_every_variable_has_a_malformed_example_above() -> None:
    assert set(MALFORMED) == env_names()


@pytest.mark.parametrize("url", [
    "amqp://",
    "amqp://127.0.0.1:notaport/",
    "redis://127.0.0.1:6379/0",
    "127.0.0.1:5672",
])
def test_rabbitmq_url_must_be_an_amqp_url_with_a_host(url: str) -> None:
    with pytest.raises(ConfigError, match="RABBITMQ_URL"):
        load_settings({"RABBITMQ_URL": url})


def test_every_malformed_variable_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as failure:
        load_settings({"CARGO_DELIVERY_LIMIT": "0", "CARGO_LOG_FORMAT": "xml"})
    assert "CARGO_DELIVERY_LIMIT" in str(failure.value)
    assert "CARGO_LOG_FORMAT" in str(failure.value)


def test_an_unknown_cargo_variable_is_rejected_by_name() -> None:
    with pytest.raises(ConfigError, match="CARGO_TASK_QUEU"):
        load_settings({"CARGO_TASK_QUEU": "typo"})


def test_variables_without_the_prefix_are_none_of_cargos_business() -> None:
    assert load_settings({"PATH": "/bin", "CELERY_BROKER_URL": "x"}) == load_settings({})


def test_the_configuration_doc_documents_every_variable_and_no_other() -> None:
    documented = set(documented_configuration_rows())
    assert sorted(env_names() - documented) == [], "add these to docs/configuration.md"
    assert sorted(documented - env_names()) == [], \
        "docs/configuration.md documents variables that do not exist"


def test_the_configuration_doc_states_each_default_as_the_code_has_it() -> None:
    rows = documented_configuration_rows()
    for name, field in Settings.model_fields.items():
        variable = env_name(Settings, name)
        _readers, default_cell, meaning = rows[variable]
        if field.default is None:
            # No literal default: the cell says what happens instead ("unset: ...", "derived: ...").
            assert not default_cell.startswith("`"), f"{variable} has no default value"
        else:
            assert default_cell == f"`{field.default}`", variable
        assert meaning, f"{variable} needs a meaning in docs/configuration.md"


def test_the_configuration_doc_says_which_processes_read_each_variable() -> None:
    rows = documented_configuration_rows()
    for name in Settings.model_fields:
        variable = env_name(Settings, name)
        readers = {process for process, kind in PROCESSES.items() if name in kind.model_fields}
        cell = rows[variable][0]
        documented = set(PROCESSES) if cell == "every process" else set(cell.split(", "))
        assert documented == readers, \
            f"docs/configuration.md: {variable} is read by {', '.join(sorted(readers))}"


def test_the_bridge_reads_a_comma_separated_list_of_dramatiq_queues() -> None:
    settings = load_settings({"CARGO_BRIDGE_QUEUES": "default,emails,default"})
    assert settings.bridge_queue_names == ("default", "emails")


def test_a_bridged_queue_named_with_spaces_is_refused() -> None:
    with pytest.raises(ConfigError, match="CARGO_BRIDGE_QUEUES"):
        load_settings({"CARGO_BRIDGE_QUEUES": "default, emails"})


# --- CARGO_AUTH_TOKEN ------------------------------------------------------------------


@pytest.mark.parametrize("token", [
    "short-secret-x",                          # under 16 characters
    " " * 24,                                  # only spaces
    "\t\n  \t\n  \t\n  \t\n",                  # only whitespace
    "correct horse battery staple",           # spaces inside: trimmed or split on the way
    "  leading-spaces-token-0123",            # a header value loses them: could never match
    "trailing-spaces-token-0123  ",
    "non-ascii-tökén-0123456789",             # not sendable in a header as is
    "control-\x01-character-0123456",
], ids=["short", "spaces", "whitespace", "inner-spaces", "leading", "trailing", "non-ascii",
        "control"])
def test_a_refused_auth_token_is_named_but_its_value_never_appears_in_the_error(
    token: str,
) -> None:
    with pytest.raises(ConfigError) as failure:
        load_settings({"CARGO_AUTH_TOKEN": token})
    message = str(failure.value)
    assert "CARGO_AUTH_TOKEN" in message
    assert "value withheld" in message
    for part in token.split():
        assert part not in message.replace("CARGO_AUTH_TOKEN", "")
    assert repr(token) not in message
    assert failure.value.__cause__ is None
    assert failure.value.__suppress_context__


def test_a_blank_auth_token_is_refused_saying_why() -> None:
    with pytest.raises(ConfigError, match=r"CARGO_AUTH_TOKEN: .*without spaces \(not blank"):
        load_settings({"CARGO_AUTH_TOKEN": " " * 32})


def test_a_printable_auth_token_of_16_characters_or_more_is_accepted_as_is() -> None:
    token = "Ab0-._~+/=!#$%&*" * 2
    assert load_settings({"CARGO_AUTH_TOKEN": token}).auth_token == token


@pytest.mark.parametrize(("variable", "value"), [
    ("RABBITMQ_URL", "amqp://cargo:s3cret-pw@rabbit:notaport/prod"),
    ("RABBITMQ_URL", "http://cargo:s3cret-pw@rabbit:5672/prod"),
    ("RABBITMQ_URL", "cargo:s3cret-pw@rabbit:5672"),  # the scheme forgotten
    ("RABBITMQ_URL", "amqp://cargo:s3cret-pw@rabbit-0:5672/prod,"
                     "amqp://cargo:s3cret-pw@rabbit-1:5672/prod,"
                     "amqp://cargo:s3cret-pw@rabbit-2:5672/other"),
    ("RABBITMQ_URL", "amqp://cargo:s3cret-pw@rabbit-0/prod;amqp://cargo:s3cret-pw@rabbit-1/prod"),
    ("CARGO_MANAGEMENT_URL", "ftp://admin:s3cret-pw@rabbit:15672"),
    ("CARGO_CANARY_PUSHGATEWAY", "ftp://push:s3cret-pw@pushgateway:9091"),
], ids=["bad-port", "not-amqp", "no-scheme", "several-vhosts", "semicolons", "management",
        "pushgateway"])
def test_an_error_about_a_url_names_its_variable_and_shows_it_with_the_password_masked(
    variable: str, value: str,
) -> None:
    with pytest.raises(ConfigError) as failure:
        load_settings({variable: value})
    message = str(failure.value)
    assert f"{variable}: " in message
    assert "s3cret-pw" not in message
    assert ":***@" in message  # the rest of the URL stays, to find the typo by
    assert failure.value.__cause__ is None
    assert failure.value.__suppress_context__


# --- Each process validates the settings it reads ----------------------------------------


@pytest.mark.parametrize("process", sorted(PROCESSES))
@pytest.mark.parametrize(("variable", "value"), sorted(MALFORMED.items()))
def test_a_malformed_value_stops_exactly_the_processes_that_read_it(
    process: str, variable: str, value: str,
) -> None:
    kind = PROCESSES[process]
    if variable in env_names(kind):
        with pytest.raises(ConfigError, match=re.escape(variable)):
            load_settings({variable: value}, kind=kind)
    else:
        assert load_settings({variable: value}, kind=kind) == load_settings({}, kind=kind)


def test_a_malformed_worker_variable_does_not_stop_the_gateway_nor_a_gateway_one_the_worker(
) -> None:
    environ = {"CARGO_TASK_LIMITS": "memory_leak_task=64", "CARGO_WS_SEND_QUEUE": "many",
               "CARGO_TASK_QUEUE": "jobs"}
    gateway = load_settings({k: v for k, v in environ.items() if k != "CARGO_WS_SEND_QUEUE"},
                            kind=GatewaySettings)
    worker = load_settings({k: v for k, v in environ.items() if k != "CARGO_TASK_LIMITS"},
                           kind=WorkerSettings)
    assert (gateway.task_queue, worker.task_queue) == ("jobs", "jobs")
    with pytest.raises(ConfigError, match="CARGO_WS_SEND_QUEUE") as failure:
        load_settings(environ, kind=GatewaySettings)
    assert "CARGO_TASK_LIMITS" not in str(failure.value)


def test_each_process_loads_only_its_own_class() -> None:
    assert type(load_settings({}, kind=GatewaySettings)) is GatewaySettings
    assert not hasattr(load_settings({}, kind=GatewaySettings), "task_limits")
    assert not hasattr(load_settings({}, kind=CanarySettings), "rabbitmq_url")


def test_a_variable_another_process_reads_is_no_unknown_variable() -> None:
    settings = load_settings({"CARGO_BRIDGE_QUEUES": "emails", "CARGO_CANARY_MAX_RESTARTS": "2"},
                             kind=GatewaySettings)
    assert settings == load_settings({}, kind=GatewaySettings)


@pytest.mark.parametrize("process", sorted(PROCESSES))
def test_an_unknown_cargo_variable_stops_every_process_by_name(process: str) -> None:
    with pytest.raises(ConfigError, match=r"unknown configuration variable.*CARGO_TASK_QUEU"):
        load_settings({"CARGO_TASK_QUEU": "typo"}, kind=PROCESSES[process])


def test_the_known_variables_are_those_of_every_process_and_no_other() -> None:
    assert known_variables() == env_names(Settings)
    assert set(Settings.model_fields) == {
        name for kind in PROCESSES.values() for name in kind.model_fields}


def test_every_process_talking_to_rabbitmq_reads_the_broker_settings() -> None:
    broker = set(BrokerSettings.model_fields)
    for process in ("gateway", "worker", "bridge", "topology"):
        assert broker <= set(PROCESSES[process].model_fields), process
    assert "log_level" in set.intersection(*(set(k.model_fields) for k in PROCESSES.values()))


def test_variable_names_are_matched_without_regard_to_case() -> None:
    settings = load_settings({"cargo_task_queue": "jobs", "Rabbitmq_Url": "amqp://rabbit/"})
    assert (settings.task_queue, settings.rabbitmq_url) == ("jobs", "amqp://rabbit/")
    with pytest.raises(ConfigError, match="cargo_task_queu"):
        load_settings({"cargo_task_queu": "typo"})


def test_a_class_constructed_directly_reads_no_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CARGO_TASK_QUEUE", "from-the-environment")
    assert GatewaySettings().task_queue == "cargo"
    assert load_settings(kind=GatewaySettings).task_queue == "from-the-environment"


def test_importing_every_process_reads_no_environment() -> None:
    # A malformed and an unknown variable: an import that read them would fail.
    env = {**os.environ, "CARGO_TASK_QUEU": "typo", "CARGO_DELIVERY_LIMIT": "0"}
    modules = "broker.settings, gateway.app, workers.app, bridge.runner, cargoctl.main"
    done = subprocess.run([sys.executable, "-c", f"import {modules}"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
