"""pydantic-settings' environment source, reading a mapping it is given.

Why: tests, benchmarks and tools validate a mapping they built (a private vhost's
URL, a chart's ConfigMap) without touching this process's environment, which every
thread shares; and a process hands it ``os.environ``, so both take one path.
pydantic-settings has no public way to give its environment source a mapping
(pydantic/pydantic-settings#653), so this overrides ``EnvSettingsSource._load_env_vars``,
the one method that reads ``os.environ`` (its own ``DotEnvSettingsSource`` does the
same), with its ``parse_env_vars``. Everything else (prefix, alias, case, types) is the
library's. Written against pydantic-settings 2.16;
``tests/unit/test_settings_environment.py`` fails, naming pydantic-settings, when an
upgrade changes either.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic_settings import BaseSettings, EnvSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

# The version this adapter was written against (pinned in pyproject.toml).
PINNED = {"pydantic-settings": "2.16.3"}


class MappingEnvSource(EnvSettingsSource):
    """``EnvSettingsSource`` over ``environ`` instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ  # first: EnvSettingsSource.__init__ loads the variables
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty,
                              self.env_parse_none_str)
