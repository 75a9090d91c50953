"""Settings from the environment (prefix ``MSGWORKER_``) and ``.env``; read by entrypoints only."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import (
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.errors import ConfigError

ENV_PREFIX = "MSGWORKER_"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
Port = Annotated[int, Field(ge=0, le=65535)]


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class Settings(BaseSettings):
    """Every knob of SPEC §5, with its default."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        extra="ignore",
        frozen=True,
        validate_default=True,
        env_ignore_empty=True,  # an empty line copied from example.env means "default"
    )

    api_base_url: HttpUrl = HttpUrl("https://api.gateway.connexease.com")
    api_key: SecretStr = SecretStr("")
    broker_url: str = "redis://localhost:6379/0"
    redis_url: str | None = None
    redis_prefix: Annotated[str, Field(min_length=1)] = "msgworker:"
    queue: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")] = "messages"
    sandbox: bool = False
    rate_per_sec: PositiveInt = 80
    rate_per_min: PositiveInt = 4800
    max_attempts: PositiveInt = 8
    max_reschedules: PositiveInt = 100
    backoff_base_s: PositiveFloat = 2.0
    backoff_cap_s: PositiveFloat = 300.0
    http_timeout_s: PositiveFloat = 10.0
    metrics_port: Port = 9808
    alert_webhook_url: HttpUrl | None = None
    alertmanager_url: HttpUrl | None = None
    visibility_timeout_s: PositiveInt = 3600
    billing_probe_interval_s: PositiveFloat = 30.0
    routing_file: Path | None = None
    log_level: LogLevel = LogLevel.INFO
    log_format: LogFormat | None = None  # None: console on a TTY, JSON elsewhere
    retention_s: PositiveFloat = 604800.0  # how long a settled job is kept
    dlq_retention_s: PositiveFloat | None = None  # None: dead letters wait until handled

    @field_validator("broker_url", "redis_url")
    @classmethod
    def _looks_like_a_url(cls, url: str | None) -> str | None:
        if url is not None and "://" not in url:
            raise ValueError("is not a URL (like redis://localhost:6379/0)")
        return url

    @field_validator("redis_url")
    @classmethod
    def _state_is_redis(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(REDIS_SCHEMES):
            raise ValueError("must be a redis:// or rediss:// URL")
        return url

    @model_validator(mode="after")
    def _state_store_is_redis(self) -> Settings:
        if self.redis_url is None and not self.broker_url.startswith(REDIS_SCHEMES):
            msg = "must be set when BROKER_URL is not Redis (state lives in Redis)"
            raise ValueError(f"{ENV_PREFIX}REDIS_URL {msg}")
        return self

    @property
    def state_url(self) -> str:
        """Where coordination state lives: REDIS_URL, else the (Redis) broker."""
        return self.redis_url or self.broker_url


def get_settings(**overrides: object) -> Settings:
    """Read settings; a bad value raises ConfigError with one line naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(describe_invalid_settings(exc)) from None


def describe_invalid_settings(exc: ValidationError) -> str:
    """One line per bad variable, named as the operator sets it, with no secret value echoed."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        location = [str(part) for part in error["loc"]]
        message = str(error["msg"]).removeprefix("Value error, ")
        if location:
            lines.append(f"{ENV_PREFIX}{location[0].upper()}: {message}")
        else:
            lines.append(message)
    return "invalid settings: " + "; ".join(lines)
