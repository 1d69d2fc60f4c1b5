"""Configuration of every Cargo process, read from the environment at start.

Each process loads only the class of the settings it uses (``load_settings(kind=
GatewaySettings)``), so a malformed variable of another process never stops it:
``CargoSettings`` (logging) is the root of them all, ``BrokerSettings`` (RabbitMQ's
address, the connection, the topology) of each that talks to the broker; code takes
the narrowest class it needs. pydantic-settings reads the variables (prefix ``CARGO_``,
plus the conventional ``RABBITMQ_URL``); ``load_settings`` also rejects a ``CARGO_``
variable no process reads and names the variable in every error. Nothing is read at
import time. docs/configuration.md lists every variable and which process reads it.
"""

from broker.settings.bridge import BridgeHealthSettings, BridgeSettings
from broker.settings.canary import CanarySettings
from broker.settings.common import ENV_PREFIX, BrokerSettings, CargoSettings
from broker.settings.gateway import GatewaySettings, TokenSettings
from broker.settings.loading import ConfigError, env_name, known_variables, load_settings
from broker.settings.masking import mask_passwords
from broker.settings.processes import PROCESSES, Settings
from broker.settings.worker import TaskLimits, WorkerHealthSettings, WorkerSettings

__all__ = [
    "ENV_PREFIX",
    "PROCESSES",
    "BridgeHealthSettings",
    "BridgeSettings",
    "BrokerSettings",
    "CanarySettings",
    "CargoSettings",
    "ConfigError",
    "GatewaySettings",
    "Settings",
    "TaskLimits",
    "TokenSettings",
    "WorkerHealthSettings",
    "WorkerSettings",
    "env_name",
    "known_variables",
    "load_settings",
    "mask_passwords",
]
