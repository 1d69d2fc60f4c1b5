"""What every process reads (logging), and what every process that talks to RabbitMQ reads.

Each process validates only its own class (``broker.settings.processes``), so a
malformed variable of one process never stops another. The classes read nothing
by themselves: :func:`broker.settings.load_settings` hands them what
pydantic-settings read from the environment, after rejecting unknown variables.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from broker.addresses import split_broker_urls

ENV_PREFIX = "CARGO_"


def http_url(value: str | None) -> str | None:
    """``value`` when it is unset or an http(s) URL: the body of each class's URL validator
    (each validator has its own name: a class inheriting two keeps both)."""
    if value is not None and urlsplit(value).scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    return value


class CargoSettings(BaseSettings):
    """Every process's settings: how it logs. The root of every process's class."""

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
        # load_settings() reads the environment (or the mapping it is given) with
        # pydantic-settings' own environment source and passes the values here, so
        # constructing a class directly reads nothing: defaults and arguments only.
        return (init_settings,)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "console"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class BrokerSettings(CargoSettings):
    """What every process that talks to RabbitMQ reads: where it is, how to connect, and the
    topology they all declare alike (gateway, worker, bridge, ``cargoctl topology``)."""

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
    connect_timeout: float = Field(default=2.0, gt=0, le=60)
    reconnect_interval: float = Field(default=1.0, gt=0, le=60)
    # The gateway's and bridge's connection (broker.connection): AMQP heartbeat, and an
    # active round trip (answered within connect_timeout) that notices a frozen broker fast.
    broker_heartbeat: int = Field(default=10, ge=0, le=600)
    broker_check_interval: float = Field(default=2.0, gt=0, le=60)
    publish_timeout: float = Field(default=1.0, gt=0, le=60)

    # The topology (broker.topology): every process must declare it with the same arguments.
    task_queue: str = Field(default="cargo", min_length=1, max_length=200)
    queue_max_length: int = Field(default=100_000, gt=0)
    delivery_limit: int = Field(default=5, ge=1, le=1000)
    events_max_age: str = Field(default="1D", pattern=r"^[0-9]+(Y|M|D|h|m|s)$")
    events_max_bytes: int = Field(default=1_000_000_000, gt=0)
    events_segment_bytes: int = Field(default=50_000_000, gt=0)

    @field_validator("rabbitmq_url")
    @classmethod
    def _amqp_urls(cls, value: str) -> str:
        split_broker_urls(value)  # raises, saying which address is wrong
        return value

    @field_validator("management_url")
    @classmethod
    def _management_url_is_http(cls, value: str | None) -> str | None:
        return http_url(value)

    @field_validator("task_queue")
    @classmethod
    def _task_queue_name(cls, value: str) -> str:
        from broker.topology import check_queue_name  # topology imports this module

        check_queue_name(value)
        return value

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
