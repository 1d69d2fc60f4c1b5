"""The workers' settings (``cargoctl worker``), and what their probes and the canary read."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import NoDecode

from broker.settings.common import BrokerSettings, CargoSettings


class TaskLimits(BaseModel):
    """One task's overrides in ``CARGO_TASK_LIMITS`` (each optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    memory_mb: int | None = Field(default=None, gt=0)
    time_limit: float | None = Field(default=None, gt=0)
    max_retries: int | None = Field(default=None, ge=0, le=100)


class WorkerHealthSettings(CargoSettings):
    """How a worker is seen from outside: its heartbeat file and when that is stale
    (``cargoctl worker health``, the canary), and its metrics port (the canary)."""

    worker_heartbeat_file: str = Field(default="/tmp/cargo-worker-heartbeat.json",
                                       pattern=r"^(/.*)?$")  # absolute, or empty: off
    worker_heartbeat_max_age: float = Field(default=30.0, gt=0, le=3600)
    worker_metrics_port: int = Field(default=9540, ge=0, le=65535)


class WorkerSettings(BrokerSettings, WorkerHealthSettings):
    """What ``cargoctl worker`` reads: which tasks and queues, retries, limits, events."""

    # Which tasks, which queues (workers.modules, broker.catalog)
    task_modules: str = Field(
        default="workers.builtin",
        pattern=r"^\s*[A-Za-z_][A-Za-z0-9_.]*(\s*,\s*[A-Za-z_][A-Za-z0-9_.]*)*\s*$",
        description="comma-separated importable modules of Celery tasks a worker loads")
    worker_queues: str | None = Field(
        default=None, pattern=r"^[^,\s]+(,[^,\s]+)*$",
        description="comma-separated queues a worker consumes; unset: its tasks' queues")
    catalog_interval: float = Field(default=15.0, gt=0, le=300)

    # Retries, limits, the memory guard
    max_retries: int = Field(default=3, ge=0, le=100)
    retry_backoff: float = Field(default=1.0, gt=0, le=3600)
    retry_backoff_max: float = Field(default=600.0, gt=0, le=86400)
    memory_limit_mb: int = Field(default=256, gt=0)
    time_limit: float = Field(default=600.0, gt=0)
    # NoDecode: _json_object parses it, so a malformed value is a validation error that
    # names the variable (pydantic-settings' own JSON decoding would raise another kind).
    task_limits: Annotated[dict[str, TaskLimits], NoDecode] = Field(default={})
    memory_check_interval: float = Field(default=0.1, gt=0, le=1)
    # workers.event_window: how long started/progress events wait to travel with the next.
    events_merge_window: float = Field(default=0.1, ge=0, le=5)
    # workers.event_relay: how busy a worker must be for its main process to batch events.
    events_relay_min_running: int = Field(default=4, ge=1, le=10_000)
    worker_heartbeat_interval: float = Field(default=2.0, gt=0, le=60)

    @field_validator("worker_queues")
    @classmethod
    def _worker_queue_names(cls, value: str | None) -> str | None:
        from broker.topology import check_queue_name  # topology imports broker.settings

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
