"""Configuration for every Cargo process, read from the environment at start.

One class, one prefix (``CARGO_``, plus the conventional ``RABBITMQ_URL``).
Nothing is read at import time: processes call :func:`load_settings` when they
start, and any malformed value, or any ``CARGO_`` variable nobody knows (a
typo would otherwise be ignored silently), stops the process with the
variable's name in the message.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from broker.addresses import split_broker_urls

ENV_PREFIX = "CARGO_"
# Settings whose values are secrets: an error names the variable, never echoes the value.
SECRET_FIELDS = frozenset({"auth_token"})
# Settings whose values are URLs that may carry user:password: an error shows
# the value with every password replaced by ``***`` (the rest helps find the typo).
URL_FIELDS = frozenset({"rabbitmq_url", "management_url", "gateway_url", "canary_pushgateway"})
# The password of each ``user:password@`` in a text, URL-shaped or not: after
# ``//``, a comma or semicolon (several addresses), or at the start (a scheme
# forgotten). Greedy up to the last ``@`` before a ``/``: a malformed value
# (an unencoded ``@`` or ``,`` in the password) is masked too much, never too little.
_PASSWORD = re.compile(r"((?:^|//|[,;])\s*[^:@/,;\s]*):[^/]*@")
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")


def mask_passwords(text: str) -> str:
    """``text`` (one URL, several comma-separated, or a message quoting them)
    with every URL password replaced by ``***``; the user and host stay."""
    return _PASSWORD.sub(r"\1:***@", text)


class ConfigError(ValueError):
    """A configuration variable is missing, malformed or unknown."""


class TaskLimits(BaseModel):
    """One task's overrides in ``CARGO_TASK_LIMITS`` (each optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    memory_mb: int | None = Field(default=None, gt=0)
    time_limit: float | None = Field(default=None, gt=0)
    max_retries: int | None = Field(default=None, ge=0, le=100)


class Settings(BaseSettings):
    """Every setting of every Cargo process; each is documented in the README."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, case_sensitive=False, extra="forbid", frozen=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings() reads the environment itself (to reject unknown
        # variables and name the variable in errors); only its values count.
        return (init_settings,)

    # Broker
    rabbitmq_url: str = Field(
        default="amqp://guest:guest@127.0.0.1:5672/",
        validation_alias="RABBITMQ_URL",
        description="AMQP URL of the broker, vhost included; several comma-separated "
                    "URLs name the nodes of one cluster",
    )
    management_url: str | None = Field(
        default=None,
        description="RabbitMQ management API; default: RABBITMQ_URL's host on port 15672",
    )
    task_queue: str = Field(default="cargo", min_length=1, max_length=200)
    queue_max_length: int = Field(default=100_000, gt=0)
    delivery_limit: int = Field(default=5, ge=1, le=1000)
    events_max_age: str = Field(default="1D", pattern=r"^[0-9]+(Y|M|D|h|m|s)$")
    events_max_bytes: int = Field(default=1_000_000_000, gt=0)
    events_segment_bytes: int = Field(default=50_000_000, gt=0)
    publish_timeout: float = Field(default=1.0, gt=0, le=60)
    publish_outcome_timeout: float = Field(default=30.0, gt=0, le=3600)
    connect_timeout: float = Field(default=2.0, gt=0, le=60)
    reconnect_interval: float = Field(default=1.0, gt=0, le=60)
    # The gateway's and bridge's connection: AMQP heartbeat, and an active round
    # trip (answered within connect_timeout) that notices a frozen broker fast.
    broker_heartbeat: int = Field(default=10, ge=0, le=600)
    broker_check_interval: float = Field(default=2.0, gt=0, le=60)

    # Gateway
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    task_store_size: int = Field(default=100_000, gt=0)
    event_buffer_size: int = Field(default=50_000, gt=0)
    events_replay_seconds: int = Field(default=3600, ge=0)
    retry_after_seconds: int = Field(default=1, ge=1)
    ws_send_queue: int = Field(default=1000, gt=0)
    auth_token: str | None = Field(default=None, min_length=16)

    # Workers: which tasks, which queues (workers.modules, broker.catalog)
    task_modules: str = Field(
        default="workers.builtin",
        pattern=r"^\s*[A-Za-z_][A-Za-z0-9_.]*(\s*,\s*[A-Za-z_][A-Za-z0-9_.]*)*\s*$",
        description="comma-separated importable modules of Celery tasks a worker loads")
    worker_queues: str | None = Field(
        default=None, pattern=r"^[^,\s]+(,[^,\s]+)*$",
        description="comma-separated queues a worker consumes; unset: its tasks' queues")
    catalog_interval: float = Field(default=15.0, gt=0, le=300)

    # Workers: retries, limits, the memory guard, metrics
    max_retries: int = Field(default=3, ge=0, le=100)
    retry_backoff: float = Field(default=1.0, gt=0, le=3600)
    retry_backoff_max: float = Field(default=600.0, gt=0, le=86400)
    memory_limit_mb: int = Field(default=256, gt=0)
    time_limit: float = Field(default=600.0, gt=0)
    task_limits: dict[str, TaskLimits] = Field(default={})
    memory_check_interval: float = Field(default=0.1, gt=0, le=1)
    # workers.event_window: how long started/progress events wait to travel with the next.
    events_merge_window: float = Field(default=0.1, ge=0, le=5)
    # workers.event_relay: how busy a worker must be for its main process to batch events.
    events_relay_min_running: int = Field(default=4, ge=1, le=10_000)
    worker_metrics_port: int = Field(default=9540, ge=0, le=65535)
    # Worker health (workers.heartbeat, cargoctl worker health)
    worker_heartbeat_file: str = Field(default="/tmp/cargo-worker-heartbeat.json",
                                       pattern=r"^(/.*)?$")  # absolute, or empty: off
    worker_heartbeat_interval: float = Field(default=2.0, gt=0, le=60)
    worker_heartbeat_max_age: float = Field(default=30.0, gt=0, le=3600)

    # The Dramatiq bridge (cargoctl bridge)
    bridge_queues: str = Field(default="default",
                               pattern=r"^[A-Za-z0-9_.:-]+(,[A-Za-z0-9_.:-]+)*$",
                               description="comma-separated Dramatiq queues the bridge consumes")
    bridge_prefetch: int = Field(default=200, ge=1, le=65535)
    bridge_max_priority: int | None = Field(default=None, gt=0, le=255)
    bridge_dead_message_ttl: int = Field(default=604_800_000, gt=0)
    bridge_metrics_port: int = Field(default=9541, ge=0, le=65535)
    bridge_heartbeat_file: str = Field(default="/tmp/cargo-bridge-heartbeat.json",
                                       pattern=r"^(/.*)?$")  # absolute, or empty: off
    bridge_heartbeat_interval: float = Field(default=2.0, gt=0, le=60)
    bridge_heartbeat_max_age: float = Field(default=30.0, gt=0, le=3600)

    # Command-line clients (cargoctl submit, watch)
    gateway_url: str = Field(default="http://127.0.0.1:8000",
                             description="where cargoctl's client commands reach the gateway")

    # The canary (cargoctl canary)
    canary_pushgateway: str | None = Field(
        default=None, description="Pushgateway the canary pushes its outcome to; unset: none")
    canary_max_restarts: int = Field(default=1, ge=0, le=100)
    canary_worker_selector: str = Field(default="app.kubernetes.io/component=worker",
                                        min_length=1)
    canary_namespace: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

    # Logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "console"

    @field_validator("rabbitmq_url")
    @classmethod
    def _amqp_urls(cls, value: str) -> str:
        split_broker_urls(value)  # raises, saying which address is wrong
        return value

    @field_validator("management_url", "gateway_url", "canary_pushgateway")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("bridge_queues")
    @classmethod
    def _dramatiq_queue_names(cls, value: str) -> str:
        for name in value.split(","):
            if name.endswith((".DQ", ".XQ")):
                raise ValueError(f"{name!r}: name the queue itself; its .DQ and .XQ come with it")
        return value

    @field_validator("task_queue")
    @classmethod
    def _task_queue_name(cls, value: str) -> str:
        from broker.topology import check_queue_name  # topology imports this module

        check_queue_name(value)
        return value

    @field_validator("worker_queues")
    @classmethod
    def _worker_queue_names(cls, value: str | None) -> str | None:
        from broker.topology import check_queue_name

        for name in (value or "").split(","):
            if name:
                check_queue_name(name)
        return value

    @field_validator("task_limits", mode="before")
    @classmethod
    def _json_object(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise ValueError(f"must be a JSON object: {exc}") from None
        return value

    @field_validator("auth_token")
    @classmethod
    def _usable_token(cls, value: str | None) -> str | None:
        # It travels in an Authorization header and in ?token=: a space or a
        # control character there is trimmed or refused on the way, so such a
        # token could never match (and one of spaces would be no secret at all).
        if value is not None and not _TOKEN_CHARS.fullmatch(value):
            raise ValueError("must be printable ASCII without spaces (not blank or "
                             "whitespace, no control or non-ASCII characters)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def bridge_queue_names(self) -> tuple[str, ...]:
        """The Dramatiq queues the bridge consumes (each with its ``.DQ``)."""
        return tuple(dict.fromkeys(q for q in self.bridge_queues.split(",") if q))

    @property
    def task_module_names(self) -> tuple[str, ...]:
        """The modules in CARGO_TASK_MODULES, in order, each once."""
        return tuple(dict.fromkeys(m.strip() for m in self.task_modules.split(",") if m.strip()))

    @property
    def worker_queue_names(self) -> tuple[str, ...] | None:
        """The queues in CARGO_WORKER_QUEUES (None: the worker's tasks' queues)."""
        if self.worker_queues is None:
            return None
        return tuple(dict.fromkeys(q for q in self.worker_queues.split(",") if q))

    @property
    def rabbitmq_urls(self) -> tuple[str, ...]:
        """Every broker address in RABBITMQ_URL (one, or the nodes of one cluster)."""
        return split_broker_urls(self.rabbitmq_url)

    @property
    def vhost(self) -> str:
        """The vhost named by RABBITMQ_URL ('/' when the path is empty)."""
        path = urlsplit(self.rabbitmq_urls[0]).path
        return unquote(path[1:]) if len(path) > 1 else "/"

    @property
    def management_api(self) -> str:
        """Base URL of the management API, credentials included."""
        if self.management_url:
            return self.management_url.rstrip("/")
        parts = urlsplit(self.rabbitmq_urls[0])
        scheme = "https" if parts.scheme == "amqps" else "http"
        user = quote(unquote(parts.username or "guest"), safe="")
        password = quote(unquote(parts.password or "guest"), safe="")
        return urlunsplit((scheme, f"{user}:{password}@{parts.hostname}:15672", "", "", ""))


def _env_name(field: str) -> str:
    info = Settings.model_fields[field]
    alias = info.validation_alias
    return alias if isinstance(alias, str) else f"{ENV_PREFIX}{field.upper()}"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the configuration, naming the variable in every error."""
    env = dict(os.environ if environ is None else environ)
    known = {_env_name(name) for name in Settings.model_fields}
    unknown = sorted(k for k in env if k.startswith(ENV_PREFIX) and k.upper() not in known)
    if unknown:
        raise ConfigError(f"unknown configuration variable(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        key = _env_name(name)
        if key in env:
            values[name] = env[key]
    try:
        # Values are passed explicitly so tests and tools can validate any mapping.
        return Settings(**values)
    except ValidationError as exc:
        by_env_name = {_env_name(name): name for name in Settings.model_fields}
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            var = _env_name(field) if field in Settings.model_fields else field
            field = by_env_name.get(var, field)  # an aliased one (RABBITMQ_URL) has no prefix
            given, message = error.get("input"), error["msg"]
            if field in URL_FIELDS and isinstance(given, str):
                given, message = mask_passwords(given), mask_passwords(message)
            shown = "value withheld" if field in SECRET_FIELDS else f"got {given!r}"
            problems.append(f"{var}: {message} ({shown})")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
