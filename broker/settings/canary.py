"""The canary's settings (``cargoctl canary``): where the gateway is, where to push, and which
worker pods ``--restart-unhealthy`` may delete (judged by the workers' own heartbeat age)."""

from __future__ import annotations

from pydantic import Field, field_validator

from broker.settings.common import http_url
from broker.settings.gateway import TokenSettings
from broker.settings.worker import WorkerHealthSettings


class CanarySettings(TokenSettings, WorkerHealthSettings):
    """What ``cargoctl canary`` reads; it never talks to RabbitMQ, so no broker setting."""

    gateway_url: str = Field(default="http://127.0.0.1:8000",
                             description="where cargoctl's client commands reach the gateway")
    canary_pushgateway: str | None = Field(
        default=None, description="Pushgateway the canary pushes its outcome to; unset: none")
    canary_max_restarts: int = Field(default=1, ge=0, le=100)
    canary_worker_selector: str = Field(default="app.kubernetes.io/component=worker",
                                        min_length=1)
    canary_namespace: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

    @field_validator("gateway_url", "canary_pushgateway")
    @classmethod
    def _canary_urls_are_http(cls, value: str | None) -> str | None:
        return http_url(value)
