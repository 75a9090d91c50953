"""Settings from the environment (prefix ``MSGWORKER_``) and ``.env``; read by entrypoints only."""

from __future__ import annotations

import difflib
import ipaddress
import os
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from dotenv import dotenv_values
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
from worker.urls import (
    CLUSTER_CARRIES_NO_DISPATCHES,
    REDIS_SCHEMES,
    SENTINEL_FORM,
    is_cluster,
    is_sentinel,
    parse_cluster,
    parse_sentinel,
)

ENV_PREFIX = "MSGWORKER_"
DEFAULT_ENV_FILE = ".env"
ENV_FILE_VARIABLE = f"{ENV_PREFIX}ENV_FILE"
MASK = "***"

PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
Port = Annotated[int, Field(ge=0, le=65535)]
# A bearer token shorter than this is guessable; longer than this is a pasting mistake.
TOKEN_MIN = 16
TOKEN_MAX = 512
CONSOLE_PASSWORD_MIN = 12  # the console's password: long enough that guessing is hopeless


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


class CookieSecure(StrEnum):
    """When the console's cookies carry ``Secure``: over HTTPS only, or always."""

    AUTO = "auto"
    ALWAYS = "always"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class Settings(BaseSettings):
    """Every setting a deployment can make, with its default."""

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
    # The sentinels' own password (AUTH to them), when a redis+sentinel:// store has one.
    redis_sentinel_password: SecretStr = SecretStr("")
    # Replicas that must have an enqueue, or a settlement, before it counts (0: none waited for).
    redis_min_replicas: Annotated[int, Field(ge=0, le=16)] = 0
    redis_prefix: Annotated[str, Field(min_length=1)] = "msgworker:"
    queue: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")] = "messages"
    sandbox: bool = False
    rate_per_sec: PositiveInt = 80
    rate_per_min: PositiveInt = 4800
    # Pair pacing: per account and recipient, at most PAIR_BURST messages the Gateway accepted in
    # any PAIR_INTERVAL_S (WhatsApp's pair rate limit, error 131056; 0 turns pacing off). A job
    # that failed 131056 is sent again after PAIR_INTERVAL_S (WhatsApp's 6 s with pacing off).
    pair_interval_s: Annotated[float, Field(ge=0, le=3600)] = 6.0
    pair_burst: Annotated[int, Field(ge=1, le=100)] = 1
    max_attempts: PositiveInt = 8
    max_reschedules: PositiveInt = 100
    # Meta's per-user marketing limit (131049): the first retry waits this long, each next one
    # twice the last, never more than a day.
    marketing_retry_s: Annotated[float, Field(gt=0, le=86400)] = 3600.0
    # Meta's doubts about the sender (131048 spam rate limit, 130429 throughput): the account's
    # bulk lane waits this long; high and normal go on.
    standing_pause_s: Annotated[float, Field(gt=0, le=86400)] = 600.0
    backoff_base_s: PositiveFloat = 2.0
    backoff_cap_s: PositiveFloat = 300.0
    http_timeout_s: PositiveFloat = 10.0
    # Producers and commands: connect and command timeout, so they fail fast when Redis is down.
    redis_timeout_s: Annotated[float, Field(gt=0, le=300)] = 2.0
    metrics_port: Port = 9808
    # Every interface by default, so Prometheus in another pod can scrape; 127.0.0.1 keeps it local.
    metrics_host: Annotated[str, Field(min_length=1)] = "0.0.0.0"  # noqa: S104
    alert_webhook_url: HttpUrl | None = None
    alertmanager_url: HttpUrl | None = None
    visibility_timeout_s: PositiveInt = 3600
    billing_probe_interval_s: PositiveFloat = 30.0
    # A TOML file naming several Gateway accounts and where each key is; None: API_KEY only.
    accounts_file: Path | None = None
    # How often a halt the Gateway caused checks whether the account's key works again.
    halt_probe_interval_s: PositiveFloat = 60.0
    routing_file: Path | None = None
    log_level: LogLevel = LogLevel.INFO
    log_format: LogFormat | None = None  # None: console on a TTY, JSON elsewhere
    env_file: Path | None = Path(DEFAULT_ENV_FILE)  # the .env read (from the environment only)
    retention_s: PositiveFloat = 604800.0  # how long a sent (or purged) job is kept
    dlq_retention_s: PositiveFloat | None = None  # None: dead letters wait until handled
    serve_port: Port = 8080  # msgworker serve: the HTTP front door
    serve_host: Annotated[str, Field(min_length=1)] = "0.0.0.0"  # noqa: S104 - as metrics_host
    # Connections msgworker serve keeps open at once (per process); beyond, new ones get 503.
    serve_max_connections: PositiveInt = 1000
    # Bearer tokens of the HTTP ingest API, comma-separated (several, to rotate); empty: off.
    ingest_tokens: SecretStr = SecretStr("")
    # The web console's password (/console); empty: the console is off (404).
    console_password: SecretStr = SecretStr("")
    # The Bearer secret the Gateway's status webhooks carry; empty: the webhook endpoint is off.
    webhook_secret: SecretStr = SecretStr("")
    # Proxies (addresses or networks, comma-separated; * for any) whose X-Forwarded-For and
    # X-Forwarded-Proto serve believes; empty: none, the peer is the client.
    forwarded_allow_ips: str = ""
    # The console's cookies: Secure when the request came over HTTPS (auto), or always.
    cookie_secure: CookieSecure = CookieSecure.AUTO

    @field_validator("ingest_tokens")
    @classmethod
    def _tokens_are_strong(cls, tokens: SecretStr) -> SecretStr:
        for token in split_tokens(tokens):
            problem = token_problem(token)
            if problem:
                raise ValueError(f"each token {problem}")
        return tokens

    @field_validator("console_password")
    @classmethod
    def _password_is_strong(cls, password: SecretStr) -> SecretStr:
        value = password.get_secret_value()
        if value and not CONSOLE_PASSWORD_MIN <= len(value) <= TOKEN_MAX:
            msg = f"must have {CONSOLE_PASSWORD_MIN} to {TOKEN_MAX} characters"
            raise ValueError(msg)
        return password

    @field_validator("webhook_secret")
    @classmethod
    def _secret_is_strong(cls, secret: SecretStr) -> SecretStr:
        value = secret.get_secret_value()
        if value and not TOKEN_MIN <= len(value) <= TOKEN_MAX:
            raise ValueError(f"must have {TOKEN_MIN} to {TOKEN_MAX} characters")
        if value and (not value.isascii() or not value.isprintable() or " " in value):
            raise ValueError("must be printable ASCII without spaces")
        return secret

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies_are_addresses(cls, proxies: str) -> str:
        entries = split_list(proxies)
        if "*" in entries and len(entries) > 1:
            raise ValueError("* (any peer) stands alone")
        for entry in entries:
            if entry == "*":
                continue
            try:
                ipaddress.ip_network(entry)
            except ValueError:
                msg = f"{entry!r} is not an IP address or network (like 10.0.0.0/8)"
                raise ValueError(msg) from None
        return proxies

    @field_validator("broker_url", "redis_url")
    @classmethod
    def _looks_like_a_url(cls, url: str | None) -> str | None:
        if url is not None and "://" not in url:
            raise ValueError("is not a URL (like redis://localhost:6379/0)")
        return url

    @field_validator("broker_url", "redis_url")
    @classmethod
    def _password_in_userinfo(cls, url: str | None) -> str | None:
        """``redis://host/0?password=p`` as ``redis://:p@host/0``: the form every client reads
        (kombu fails on a password in the query)."""
        if url is None or not url.startswith(REDIS_SCHEMES[:2]):
            return url
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        given = [value for name, value in query if name == "password"]
        if not given:
            return url
        if len(given) > 1 or parts.password is not None:
            raise ValueError("gives the password twice")
        user, _, host = parts.netloc.rpartition("@")
        userinfo = f"{user}:{quote(given[0], safe='')}@"
        rest = urlencode([(name, value) for name, value in query if name != "password"])
        return urlunsplit((parts.scheme, userinfo + host, parts.path, rest, parts.fragment))

    @field_validator("broker_url", "redis_url")
    @classmethod
    def _several_hosts_form(cls, url: str | None) -> str | None:
        """kombu's own ``sentinel://`` form has no place for the primary's name: ours does."""
        if url is not None and url.startswith("sentinel://"):
            raise ValueError(f"Sentinel is given as {SENTINEL_FORM}")
        if url is not None and is_sentinel(url):
            parse_sentinel(url)
        if url is not None and is_cluster(url):
            parse_cluster(url)
        return url

    @field_validator("redis_url")
    @classmethod
    def _state_is_redis(cls, url: str | None) -> str | None:
        if url is not None and not (
            url.startswith(REDIS_SCHEMES) or is_sentinel(url) or is_cluster(url)
        ):
            msg = (
                "must be a redis://, rediss://, unix://, redis+sentinel:// or redis+cluster:// URL"
            )
            raise ValueError(msg)
        return url

    @model_validator(mode="before")
    @classmethod
    def _broker_follows_the_store(cls, values: object) -> object:
        """BROKER_URL unset: the dispatches go through the state store's Redis. A cluster
        cannot carry them (kombu has no transport for it): given as BROKER_URL it is refused
        here, and followed from REDIS_URL it stands for "no broker" (``has_broker``)."""
        if not isinstance(values, dict):
            return values
        given = values.get("broker_url")
        if given and is_cluster(str(given)):
            msg = f"{ENV_PREFIX}BROKER_URL: {CLUSTER_CARRIES_NO_DISPATCHES}"
            raise ValueError(msg)
        if values.get("redis_url") and not given:
            return {**values, "broker_url": values["redis_url"]}
        return values

    @model_validator(mode="after")
    def _state_store_is_redis(self) -> Settings:
        if self.redis_url is None and not (
            self.broker_url.startswith(REDIS_SCHEMES) or is_sentinel(self.broker_url)
        ):
            msg = "must be set when BROKER_URL is not Redis (state lives in Redis)"
            raise ValueError(f"{ENV_PREFIX}REDIS_URL {msg}")
        return self

    @property
    def state_url(self) -> str:
        """Where coordination state lives: REDIS_URL, else the (Redis) broker."""
        return self.redis_url or self.broker_url

    @property
    def has_broker(self) -> bool:
        """False when the store is a Redis Cluster and BROKER_URL was not given: there is
        nothing to carry the dispatches (a worker refuses to start)."""
        return not is_cluster(self.broker_url)

    @property
    def sentinel_password(self) -> str | None:
        """The sentinels' password, None when they have none."""
        return self.redis_sentinel_password.get_secret_value() or None


def token_problem(token: str) -> str | None:
    """What makes an ingest token too weak or unusable in a header, if anything (no value)."""
    if not TOKEN_MIN <= len(token) <= TOKEN_MAX:
        return f"must have {TOKEN_MIN} to {TOKEN_MAX} characters"
    if not token.isascii() or not token.isprintable() or " " in token or "," in token:
        return "must be printable ASCII without spaces or commas"
    return None


def split_tokens(tokens: SecretStr) -> tuple[str, ...]:
    """The tokens of a comma-separated secret, surrounding spaces and empty entries dropped."""
    return split_list(tokens.get_secret_value())


def split_list(value: str) -> tuple[str, ...]:
    """The entries of a comma-separated setting, surrounding spaces and empty entries dropped."""
    parts = (part.strip() for part in value.split(","))
    return tuple(part for part in parts if part)


def known_variables() -> frozenset[str]:
    """Every ``MSGWORKER_*`` name a deployment may set (config/example.env documents each)."""
    return frozenset(f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields)


def unknown_variable(names: Iterable[str]) -> str | None:
    """The one-line refusal for the first ``MSGWORKER_*`` name no setting has, else None."""
    known = known_variables()
    for name in sorted(names):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known:
            continue
        suffixes = [k.removeprefix(ENV_PREFIX) for k in known]
        (closest,) = difflib.get_close_matches(upper.removeprefix(ENV_PREFIX), suffixes, 1, 0)
        return f"unknown setting {name} (did you mean {ENV_PREFIX}{closest}?)"
    return None


def env_file_path(environ: Mapping[str, str]) -> tuple[Path, bool]:
    """The .env to read: MSGWORKER_ENV_FILE, else .env in the working directory; and whether
    it was named explicitly (then it must exist)."""
    named = environ.get(ENV_FILE_VARIABLE) or ""
    return Path(named or DEFAULT_ENV_FILE), bool(named)


def get_settings(**overrides: object) -> Settings:
    """Read settings; a bad value or an unknown ``MSGWORKER_*`` name raises ConfigError with
    one line naming the variable."""
    if "_env_file" in overrides:
        chosen = overrides["_env_file"]
        env_file = Path(str(chosen)) if chosen is not None else None
        explicit = env_file is not None
    else:
        env_file, explicit = env_file_path(os.environ)
    names = set(os.environ)
    if env_file is not None:
        if env_file.is_file():
            names |= set(dotenv_values(env_file))
        elif explicit:
            msg = f"{ENV_FILE_VARIABLE}: no such file {str(env_file)!r}"
            raise ConfigError(f"invalid settings: {msg}")
    refusal = unknown_variable(names)
    if refusal is not None:
        raise ConfigError(f"invalid settings: {refusal}")
    values = {"env_file": env_file, **overrides, "_env_file": env_file}
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(describe_invalid_settings(exc)) from None


def mask_url(url: str) -> str:
    """A URL fit to print or log: user, password and every query value replaced by ***."""
    if is_sentinel(url) or is_cluster(url):
        try:
            return (parse_sentinel(url) if is_sentinel(url) else parse_cluster(url)).masked()
        except ValueError:
            return f"{url.partition('://')[0]}://{MASK}"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # not a URL at all: show its scheme only
        scheme = url.partition("://")[0] if "://" in url else ""
        return f"{scheme}://{MASK}" if scheme else MASK
    if not parts.scheme:
        return MASK
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    if parts.username or parts.password is not None:
        user = MASK if parts.username else ""
        password = f":{MASK}" if parts.password is not None else ""
        netloc = f"{user}{password}@{netloc}"
    names = [quote(k, safe="") for k, _ in parse_qsl(parts.query, keep_blank_values=True)]
    query = "&".join(f"{name}={MASK}" for name in names)
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


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
