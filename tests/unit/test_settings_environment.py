"""What ``broker.settings.environment`` borrows from pydantic-settings still holds.

It overrides ``EnvSettingsSource._load_env_vars`` and calls ``parse_env_vars``
(neither is public): when an upgrade renames, moves or stops calling them, these
fail saying so, instead of settings silently read from the wrong place.
"""

from __future__ import annotations

from importlib.metadata import version

import pytest
from pydantic_settings import EnvSettingsSource

from broker.settings import GatewaySettings, environment
from broker.settings.environment import MappingEnvSource
from tests.unit.adapter_pins import assert_pinned

UPGRADE = (f"pydantic-settings {version('pydantic-settings')} changed what "
           f"broker/settings/environment.py relies on; see its docstring")


def test_pydantic_settings_is_installed_at_and_pinned_to_the_version_the_adapter_was_written_for(
) -> None:
    assert_pinned(environment)


def test_pydantic_settings_still_loads_the_environment_through_load_env_vars() -> None:
    assert callable(getattr(EnvSettingsSource, "_load_env_vars", None)), UPGRADE
    try:
        from pydantic_settings.sources.utils import parse_env_vars  # noqa: F401
    except ImportError:
        pytest.fail(UPGRADE)


def test_the_mapping_source_reads_the_mapping_and_not_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CARGO_TASK_QUEUE", "from-the-environment")
    monkeypatch.setenv("CARGO_MAX_BODY_BYTES", "5")
    values = MappingEnvSource(GatewaySettings, {"cargo_task_queue": "jobs",
                                                "RABBITMQ_URL": "amqp://rabbit/"})()
    assert values == {"task_queue": "jobs", "RABBITMQ_URL": "amqp://rabbit/"}, UPGRADE
