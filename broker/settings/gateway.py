"""The gateway's settings (``cargoctl gateway``), and its token, which the canary sends too."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from broker.settings.common import BrokerSettings, CargoSettings

_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")


class TokenSettings(CargoSettings):
    """The bearer token of the gateway's API: the gateway requires it, the canary sends it."""

    auth_token: str | None = Field(default=None, min_length=16)

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


class GatewaySettings(BrokerSettings, TokenSettings):
    """What ``cargoctl gateway`` reads: the broker's settings, its token and its limits."""

    publish_outcome_timeout: float = Field(default=30.0, gt=0, le=3600)
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    task_store_size: int = Field(default=100_000, gt=0)
    event_buffer_size: int = Field(default=50_000, gt=0)
    events_replay_seconds: int = Field(default=3600, ge=0)
    retry_after_seconds: int = Field(default=1, ge=1)
    ws_send_queue: int = Field(default=1000, gt=0)
