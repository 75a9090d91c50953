"""The accounts a deployment knows, each with where its Gateway key is and its own limits.

Without an accounts file there is one account, ``default``, on ``API_KEY``. With one (TOML)::

    [accounts.brand_a]
    api_key_env = "BRAND_A_KEY"        # or api_key_file = "/var/run/keys/brand_a" (exactly one)
    rate_per_sec = 80                  # optional ceilings; default RATE_PER_SEC / RATE_PER_MIN
    rate_per_min = 4800
    sandbox = false                    # optional; default SANDBOX
    weight = 1                         # optional

The file names where each key is, never the key: a key is read from its variable or file when it
is needed (``Account.api_key``), so a rotated key is seen without a restart. Parsing reads only the
file; every problem is a ConfigError of one line naming the account and the field.
"""

from __future__ import annotations

import os
import re
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worker.errors import ConfigError
from worker.store.keys import DEFAULT_ACCOUNT
from worker.store.ratelimit import MIN_LIMIT_MAX, SEC_LIMIT_MAX

ACCOUNT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
WEIGHT_MAX = 1000
# The sending path re-reads a key at most this often (so a rotated key is in use this soon).
KEY_MAX_AGE_S = 1.0
# A key file is a few dozen bytes; past this much it is not a key.
KEY_FILE_MAX = 4096
FIELDS = ("api_key_env", "api_key_file", "rate_per_sec", "rate_per_min", "sandbox", "weight")


@dataclass(frozen=True)
class Account:
    """One Gateway account: where its key is, its rate ceilings (None: follow the Gateway)."""

    name: str
    key_env: str | None = None
    key_file: Path | None = None
    key_value: str = field(default="", repr=False)  # the key itself (API_KEY, no accounts file)
    rate_per_sec: int | None = None
    rate_per_min: int | None = None
    sandbox: bool = False
    weight: int = 1

    def api_key(self, environ: Mapping[str, str] | None = None) -> str:
        """The key as it is now, read again from its variable or file ('' when there is none)."""
        if self.key_env is not None:
            return (os.environ if environ is None else environ).get(self.key_env, "").strip()
        if self.key_file is not None:
            try:
                with self.key_file.open("rb") as handle:
                    raw = handle.read(KEY_FILE_MAX)
            except OSError:
                return ""
            return raw.decode("utf-8", "replace").strip()
        return self.key_value


class FreshKey:
    """An account's key for the sending path: read again once the copy is ``max_age_s`` old, so a
    rotated key is used within that long without a file read per call."""

    def __init__(
        self,
        account: Account,
        *,
        max_age_s: float = KEY_MAX_AGE_S,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._account = account
        self._max_age_s = max_age_s
        self._clock = clock or time.monotonic
        self._key = ""
        self._read_at = float("-inf")

    def __call__(self) -> str:
        now = self._clock()
        if now - self._read_at >= self._max_age_s:
            self._key, self._read_at = self._account.api_key(), now
        return self._key


@dataclass(frozen=True)
class Defaults:
    """What an account takes from the settings when the accounts file does not say."""

    api_key: str = field(default="", repr=False)
    rate_per_sec: int | None = None
    rate_per_min: int | None = None
    sandbox: bool = False


def load_accounts(path: Path | None, defaults: Defaults) -> dict[str, Account]:
    """The accounts of the file at ``path`` in its order, or ``default`` on API_KEY without one."""
    if path is None:
        return {DEFAULT_ACCOUNT: single_account(defaults)}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ConfigError(f"accounts file {path}: cannot read it ({reason})") from None
    return parse_accounts(text, defaults, source=path)


def single_account(defaults: Defaults) -> Account:
    return Account(
        DEFAULT_ACCOUNT,
        key_value=defaults.api_key,
        rate_per_sec=defaults.rate_per_sec,
        rate_per_min=defaults.rate_per_min,
        sandbox=defaults.sandbox,
    )


def parse_accounts(text: str, defaults: Defaults, *, source: Path) -> dict[str, Account]:
    """The accounts a file's text names; a relative ``api_key_file`` is beside the file."""
    where = f"accounts file {source}"
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc})") from None
    extra = sorted(set(document) - {"accounts"})
    if extra:
        raise ConfigError(f"{where}: unknown table or key {extra[0]!r} (only [accounts.NAME])")
    tables = document.get("accounts")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"{where}: no account (add an [accounts.NAME] table)")
    accounts = {}
    for name, table in tables.items():
        if not ACCOUNT_NAME.fullmatch(name):
            msg = f"account {name[:80]!r}: the name must be 1 to 64 of A-Z a-z 0-9 _ . -"
            raise ConfigError(f"{where}: {msg}")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: account {name!r}: must be a table [accounts.{name}]")
        try:
            accounts[name] = _account(name, table, defaults, source.parent)
        except ValueError as exc:
            raise ConfigError(f"{where}: account {name!r}: {exc}") from None
    return accounts


def _account(name: str, table: dict[str, Any], defaults: Defaults, base: Path) -> Account:
    unknown = sorted(set(table) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (known: {', '.join(FIELDS)})")
    env, file = table.get("api_key_env"), table.get("api_key_file")
    if (env is None) == (file is None):
        raise ValueError("api_key_env or api_key_file: give exactly one (never the key itself)")
    if env is not None and (not isinstance(env, str) or not ENV_NAME.fullmatch(env)):
        raise ValueError("api_key_env: must name an environment variable (like BRAND_A_KEY)")
    if file is not None and (not isinstance(file, str) or not file.strip() or "\0" in file):
        raise ValueError("api_key_file: must be a path to the file holding the key")
    sandbox = table.get("sandbox", defaults.sandbox)
    if not isinstance(sandbox, bool):
        raise ValueError("sandbox: must be true or false")  # noqa: TRY004 - one error kind
    return Account(
        name,
        key_env=env,
        key_file=None if file is None else base / Path(file),
        rate_per_sec=_whole(table, "rate_per_sec", SEC_LIMIT_MAX, defaults.rate_per_sec),
        rate_per_min=_whole(table, "rate_per_min", MIN_LIMIT_MAX, defaults.rate_per_min),
        sandbox=sandbox,
        weight=_whole(table, "weight", WEIGHT_MAX, 1) or 1,
    )


def _whole(table: dict[str, Any], name: str, maximum: int, default: int | None) -> int | None:
    value = table.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ValueError(f"{name}: must be a whole number from 1 to {maximum}")
    return value


def known_accounts(accounts_file: Path | None) -> frozenset[str]:
    """The names of the accounts a deployment knows (ConfigError for a bad accounts file)."""
    return frozenset(load_accounts(accounts_file, Defaults()))


def unknown_account_message(name: str, known: frozenset[str]) -> str:
    """The one-line refusal for an account the deployment does not know, naming the known ones."""
    return f"unknown account {name!r} (known: {', '.join(sorted(known))})"
