"""Loading a process's settings: pydantic-settings reads, this only adds what it cannot.

It rejects a ``CARGO_`` variable that no process reads (a typo would otherwise be
ignored silently), and its errors name the variable (``CARGO_FOO``, not the field)
without echoing a secret or a URL's password.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar, overload

from pydantic import ValidationError

from broker.settings.common import ENV_PREFIX, CargoSettings
from broker.settings.environment import MappingEnvSource
from broker.settings.masking import mask_passwords
from broker.settings.processes import PROCESSES, Settings

S = TypeVar("S", bound=CargoSettings)

# Settings whose values are secrets: an error names the variable, never echoes the value.
SECRET_FIELDS = frozenset({"auth_token"})
# Settings whose values are URLs that may carry user:password: an error shows
# the value with every password replaced by ``***`` (the rest helps find the typo).
URL_FIELDS = frozenset({"rabbitmq_url", "management_url", "gateway_url", "canary_pushgateway"})


class ConfigError(ValueError):
    """A configuration variable is missing, malformed or unknown."""


def env_name(settings_cls: type[CargoSettings], field: str) -> str:
    """The environment variable of ``field``: its alias (``RABBITMQ_URL``), else prefixed."""
    alias = settings_cls.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else f"{ENV_PREFIX}{field.upper()}"


def known_variables() -> frozenset[str]:
    """Every variable some process reads."""
    return frozenset(env_name(cls, field) for cls in PROCESSES.values()
                     for field in cls.model_fields)


@overload
def load_settings(environ: Mapping[str, str] | None = None) -> Settings: ...
@overload
def load_settings(environ: Mapping[str, str] | None = None, *, kind: type[S]) -> S: ...
def load_settings(environ: Mapping[str, str] | None = None, *,
                  kind: type[CargoSettings] = Settings) -> CargoSettings:
    """``kind`` (default: every process's settings) from ``environ`` (default: this
    process's environment), naming the variable in every error."""
    env = os.environ if environ is None else environ
    known = known_variables()
    unknown = sorted(k for k in env if k.upper().startswith(ENV_PREFIX) and k.upper() not in known)
    if unknown:
        raise ConfigError(f"unknown configuration variable(s): {', '.join(unknown)}")
    try:
        return kind(**MappingEnvSource(kind, env)())
    except ValidationError as exc:
        raise ConfigError("invalid configuration: " + _problems(kind, exc)) from None


def _problems(kind: type[CargoSettings], exc: ValidationError) -> str:
    # An error's location is the field's name, or its alias (RABBITMQ_URL) when it has one.
    fields = {**{name: name for name in kind.model_fields},
              **{env_name(kind, name): name for name in kind.model_fields}}
    problems = []
    for error in exc.errors():
        loc = str(error["loc"][0]) if error["loc"] else "?"
        field = fields.get(loc)
        var = env_name(kind, field) if field is not None else loc
        given, message = error.get("input"), error["msg"]
        if field in URL_FIELDS and isinstance(given, str):
            given, message = mask_passwords(given), mask_passwords(message)
        shown = "value withheld" if field in SECRET_FIELDS else f"got {given!r}"
        problems.append(f"{var}: {message} ({shown})")
    return "; ".join(problems)
