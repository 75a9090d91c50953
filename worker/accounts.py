"""The accounts a deployment knows, each with where its Gateway key is and its own limits.

Without an accounts file there is one account, ``default``, on ``API_KEY``. With one (TOML)::

    [accounts.brand_a]
    api_key_env = "BRAND_A_KEY"        # or api_key_file = "/var/run/keys/brand_a" (exactly one)
    rate_per_sec = 80                  # optional ceilings; default RATE_PER_SEC / RATE_PER_MIN
    rate_per_min = 4800
    sandbox = false                    # optional; default SANDBOX
    weight = 1                         # optional
    waba_id = "102290129340398"        # optional: the WhatsApp Business Account of its templates

The file names where each key is, never the key: a key is read from its variable or file when it
is needed (``Account.api_key``), so a rotated key is seen without a restart. Parsing reads only the
file; every problem is a ConfigError of one line naming the account and the field.

The same file may scope HTTP ingest tokens to some accounts (``IngestClient``)::

    [ingest.partner]
    token_file = "/var/run/secrets/partner-token"   # or token_env = "PARTNER_TOKEN" (exactly one)
    accounts = ["brand_a"]                          # each one an [accounts.NAME] above

Such a token is read once, when ``msgworker serve`` starts (``IngestClient.token``).
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

from worker.account_names import ACCOUNT_NAME, DEFAULT_ACCOUNT
from worker.bounds import MIN_LIMIT_MAX, SEC_LIMIT_MAX
from worker.errors import ConfigError

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
WEIGHT_MAX = 1000
# The sending path re-reads a key at most this often (so a rotated key is in use this soon).
KEY_MAX_AGE_S = 1.0
# A key file is a few dozen bytes; past this much it is not a key.
KEY_FILE_MAX = 4096
FIELDS = (
    "api_key_env",
    "api_key_file",
    "rate_per_sec",
    "rate_per_min",
    "sandbox",
    "weight",
    "waba_id",
)
# A WhatsApp Business Account id, as Meta's webhooks name it in ``entry[].id``.
WABA_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
INGEST_FIELDS = ("token_env", "token_file", "accounts")


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
    waba_id: str | None = None  # the account's template events name it (entry[].id)

    def api_key(self, environ: Mapping[str, str] | None = None) -> str:
        """The key as it is now, read again from its variable or file ('' when there is none)."""
        if self.key_env is None and self.key_file is None:
            return self.key_value
        return read_secret(self.key_env, self.key_file, environ)


def read_secret(env: str | None, file: Path | None, environ: Mapping[str, str] | None) -> str:
    """A secret as it is now, from its variable or its file, surrounding whitespace dropped
    ('' when it is unset or unreadable)."""
    if env is not None:
        return (os.environ if environ is None else environ).get(env, "").strip()
    if file is None:
        return ""
    try:
        with file.open("rb") as handle:
            raw = handle.read(KEY_FILE_MAX)
    except OSError:
        return ""
    return raw.decode("utf-8", "replace").strip()


@dataclass(frozen=True)
class IngestClient:
    """An ``[ingest.NAME]`` of the accounts file: where one HTTP ingest token is, and the only
    accounts it may enqueue on and read jobs of."""

    name: str
    accounts: frozenset[str]
    token_env: str | None = None
    token_file: Path | None = None

    def token(self, environ: Mapping[str, str] | None = None) -> str:
        """The token as it is now ('' when its variable is unset or its file unreadable)."""
        return read_secret(self.token_env, self.token_file, environ)


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
    return parse_accounts(_read(path), defaults, source=path)


def load_ingest_clients(path: Path | None) -> tuple[IngestClient, ...]:
    """The ``[ingest.NAME]`` tables of the accounts file at ``path`` (none without a file)."""
    if path is None:
        return ()
    text = _read(path)
    accounts = parse_accounts(text, Defaults(), source=path)
    return _ingest_clients(_document(text, f"accounts file {path}").get("ingest"), accounts, path)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ConfigError(f"accounts file {path}: cannot read it ({reason})") from None


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
    document = _document(text, where)
    extra = sorted(set(document) - {"accounts", "ingest"})
    if extra:
        raise ConfigError(
            f"{where}: unknown table or key {extra[0]!r} (only [accounts.NAME], [ingest.NAME])"
        )
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
    _ingest_clients(document.get("ingest"), accounts, source)  # checked by every command
    owners: dict[str, str] = {}
    for name, account in accounts.items():
        if account.waba_id is not None and account.waba_id in owners:
            msg = f"waba_id: {account.waba_id!r} names account {owners[account.waba_id]!r} already"
            raise ConfigError(f"{where}: account {name!r}: {msg}")
        if account.waba_id is not None:
            owners[account.waba_id] = name
    return accounts


def _document(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc})") from None


def _ingest_clients(
    tables: Any, accounts: Mapping[str, Account], source: Path
) -> tuple[IngestClient, ...]:
    """The ``[ingest.NAME]`` tables; a problem names the table and the field, never a value."""
    where = f"accounts file {source}"
    if tables is None:
        return ()
    if not isinstance(tables, dict):
        raise ConfigError(f"{where}: ingest: must be tables [ingest.NAME]")
    clients = []
    for name, table in tables.items():
        if not ACCOUNT_NAME.fullmatch(name):
            msg = f"ingest {name[:80]!r}: the name must be 1 to 64 of A-Z a-z 0-9 _ . -"
            raise ConfigError(f"{where}: {msg}")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: ingest {name!r}: must be a table [ingest.{name}]")
        try:
            clients.append(_ingest_client(name, table, frozenset(accounts), source.parent))
        except ValueError as exc:
            raise ConfigError(f"{where}: ingest {name!r}: {exc}") from None
    return tuple(clients)


def _ingest_client(
    name: str, table: dict[str, Any], accounts: frozenset[str], base: Path
) -> IngestClient:
    unknown = sorted(set(table) - set(INGEST_FIELDS))
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (known: {', '.join(INGEST_FIELDS)})")
    env, file = table.get("token_env"), table.get("token_file")
    if (env is None) == (file is None):
        raise ValueError("token_env or token_file: give exactly one (never the token itself)")
    if env is not None and (not isinstance(env, str) or not ENV_NAME.fullmatch(env)):
        raise ValueError("token_env: must name an environment variable (like PARTNER_TOKEN)")
    if file is not None and (not isinstance(file, str) or not file.strip() or "\0" in file):
        raise ValueError("token_file: must be a path to the file holding the token")
    scope = table.get("accounts")
    if not isinstance(scope, list) or not scope:
        raise ValueError("accounts: must be a list of one or more [accounts.NAME] names")
    for position, account in enumerate(scope, 1):
        if not isinstance(account, str) or account not in accounts:
            raise ValueError(f"accounts: entry {position} is not an [accounts.NAME] of this file")
    return IngestClient(
        name,
        frozenset(scope),
        token_env=env,
        token_file=None if file is None else base / Path(file),
    )


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
    waba_id = table.get("waba_id")
    if waba_id is not None and (not isinstance(waba_id, str) or not WABA_ID.fullmatch(waba_id)):
        raise ValueError(
            "waba_id: must be the WhatsApp Business Account id (1 to 64 of A-Z a-z 0-9 _ . -)"
        )
    return Account(
        name,
        key_env=env,
        key_file=None if file is None else base / Path(file),
        rate_per_sec=_whole(table, "rate_per_sec", SEC_LIMIT_MAX, defaults.rate_per_sec),
        rate_per_min=_whole(table, "rate_per_min", MIN_LIMIT_MAX, defaults.rate_per_min),
        sandbox=sandbox,
        weight=_whole(table, "weight", WEIGHT_MAX, 1) or 1,
        waba_id=waba_id,
    )


def _whole(table: dict[str, Any], name: str, maximum: int, default: int | None) -> int | None:
    value = table.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ValueError(f"{name}: must be a whole number from 1 to {maximum}")
    return value


def template_event_accounts(accounts: Mapping[str, Account]) -> Callable[[str], str | None]:
    """The account a template event is about, from its ``entry[].id``: the one whose ``waba_id``
    it is; with one account, that account; else None (an event for no account of ours)."""
    by_waba = {a.waba_id: name for name, a in accounts.items() if a.waba_id is not None}
    only = next(iter(accounts)) if len(accounts) == 1 else None
    return lambda entry_id: by_waba.get(entry_id, only)


def known_accounts(accounts_file: Path | None) -> frozenset[str]:
    """The names of the accounts a deployment knows (ConfigError for a bad accounts file)."""
    return frozenset(load_accounts(accounts_file, Defaults()))


def unknown_account_message(name: str, known: frozenset[str]) -> str:
    """The one-line refusal for an account the deployment does not know, naming the known ones."""
    return f"unknown account {name!r} (known: {', '.join(sorted(known))})"
