"""The sandbox gateway's state, kept free of HTTP: keys, rate windows, balances, faults, the log.

`SandboxState.handle` turns one ``POST /v1/wa/message`` into a `Reply` (status, body, headers,
how long to stall, whether to drop the connection) and records what it did; `worker.sandbox.server`
only reads the request, sleeps and writes the reply. Everything runs on one event loop, so
nothing here locks.
"""

from __future__ import annotations

import json
import math
import random
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from typing import Any

from worker.sandbox.accounts import KeyAccount, Stats, to_milli
from worker.sandbox.config import (
    KNOBS,
    SandboxConfig,
    SandboxInputError,
    check_api_key,
    check_flag,
    check_number,
)
from worker.sandbox.meta import Meta
from worker.sandbox.replies import (
    AUTH_001,
    AUTH_002,
    AUTH_003,
    BILL_001,
    BILL_002,
    DROP,
    RATE_001,
    WABA_001,
    Reply,
    Scripted,
    fault_reply,
    format_retry_after,
    parse_scripted,
    success_reply,
    validated_payload,
    wa_id_of,
)
from worker.sandbox.templates import TemplateEvent, after_template_event, parse_template_event

MESSAGE_COST_MILLI = 1  # balances are integer thousandths: 0.001 per message, no float drift
# A sandbox left running for days keeps the newest messages; sequence numbers never restart.
MESSAGE_LOG_MAX = 1_000_000
# Every request's arrival (time and answer code), newest kept: when calls came, not only which.
ARRIVALS_MAX = 100_000

_AUTH_001, _AUTH_002, _AUTH_003 = AUTH_001.reply(), AUTH_002.reply(), AUTH_003.reply()
_WABA_001 = WABA_001.reply()


class SandboxState:
    """The whole sandbox: accounts, knobs, scripts, outage, statistics and the message log."""

    def __init__(
        self,
        config: SandboxConfig,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = replace(config)  # runtime changes must not leak into the caller's object
        self._clock = clock
        self._wall = wall
        # Fault injection is a test fixture, not security: a seedable PRNG is what we want.
        self._rng = random.Random(config.seed)  # noqa: S311
        self._accounts: dict[str, KeyAccount] = {}
        for key in config.api_keys:
            self.upsert_key({"api_key": key})
        self._script: deque[Scripted] = deque()
        self._outage_until = -math.inf
        self.stats = Stats()
        self._log: list[dict[str, Any]] = []
        self._log_base = 0  # sequence number of the message before _log[0]
        self._arrivals: deque[dict[str, Any]] = deque(maxlen=ARRIVALS_MAX)
        self._wamid_prefix = "HBgS" + secrets.token_hex(6).upper()
        self._wamid_serial = 0
        self._fake = False  # the request being handled asked is_fake=true
        self._meta = Meta()

    # --- the gateway -------------------------------------------------------------------------

    def handle(
        self,
        authorization: str | None,
        body: bytes,
        idempotency_key: str | None,
        *,
        fake: bool = False,
    ) -> Reply:
        """Decide the answer to one ``POST /v1/wa/message`` and count it; ``fake`` (is_fake=true)
        is kept on the accepted message's record."""
        arrived = self._wall()
        self._fake = fake
        reply, label = self._decide(authorization, body, idempotency_key)
        # A client killed before its answer left (None: dropped) never learned the outcome.
        answered = None if reply.drop else arrived + reply.delay_s
        self._arrivals.append({"at": arrived, "answered_at": answered, "code": reply.code})
        stats = self.stats
        stats.requests += 1
        stats.by_code[reply.code] += 1
        if label is not None:
            stats.by_key.setdefault(label, Counter())[reply.code] += 1
        if not reply.drop:
            stats.by_status[str(reply.status)] += 1
        return reply

    def _decide(
        self, authorization: str | None, body: bytes, idempotency_key: str | None
    ) -> tuple[Reply, str | None]:
        """The answer, and the label of the key it was for (None: no known key)."""
        now = self._clock()
        if now < self._outage_until:
            return DROP, None
        account = self._authenticate(authorization)
        if isinstance(account, Reply):
            return account, None
        if self._script:
            return self._play(self._script.popleft(), account, body, idempotency_key), account.label
        if account.waba_broken:
            return _WABA_001, account.label
        return self._checked(account, now, body, idempotency_key), account.label

    def _checked(
        self, account: KeyAccount, now: float, body: bytes, idempotency_key: str | None
    ) -> Reply:
        limited, headers = self._rate_limit(account, now)
        if limited is not None:
            return limited
        if account.no_billing:
            return BILL_002.reply(headers=headers)
        if account.balance_milli <= 0:
            return BILL_001.reply(headers=headers)
        payload = validated_payload(body, headers)
        if isinstance(payload, Reply):
            return payload
        return self._deliver(account, payload, idempotency_key, headers)

    def _authenticate(self, authorization: str | None) -> KeyAccount | Reply:
        if authorization is None or not authorization.strip():
            return _AUTH_002
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token or " " in token:
            return _AUTH_003
        return self._accounts.get(token, _AUTH_001)

    def _limits(self, account: KeyAccount) -> tuple[int, int]:
        """The key's own (per_sec, per_min) limits, else the sandbox's."""
        return (
            account.rate_per_sec or self.config.rate_per_sec,
            account.rate_per_min or self.config.rate_per_min,
        )

    def _rate_limit(self, account: KeyAccount, now: float) -> tuple[Reply | None, dict[str, str]]:
        per_sec, per_min = self._limits(account)
        sec_used, min_used = account.per_sec.used(now), account.per_min.used(now)
        if sec_used < per_sec and min_used < per_min:
            account.per_sec.add(now)
            account.per_min.add(now)
            return None, self._rate_headers(account, sec_used + 1, min_used + 1)
        headers = self._rate_headers(account, sec_used, min_used)
        sec_wait = account.per_sec.wait_s(now, per_sec)
        min_wait = account.per_min.wait_s(now, per_min)
        # When both are full the longer wait is the true one; naming it spares a second 429.
        limit_type, wait_s = ("min", min_wait) if min_wait > sec_wait else ("sec", sec_wait)
        retry_after = max(1, math.ceil(wait_s))
        headers["Retry-After"] = str(retry_after)
        params = {
            "limit_type": limit_type,
            "retry_after": format_retry_after(self.config.retry_after_format, retry_after),
        }
        return RATE_001.reply(params, headers), headers

    def _rate_headers(self, account: KeyAccount, sec_used: int, min_used: int) -> dict[str, str]:
        per_sec, per_min = self._limits(account)
        return {
            "X-RateLimit-sec-Limit": str(per_sec),
            "X-RateLimit-sec-Remaining": str(max(per_sec - sec_used, 0)),
            "X-RateLimit-min-Limit": str(per_min),
            "X-RateLimit-min-Remaining": str(max(per_min - min_used, 0)),
        }

    def _deliver(
        self,
        account: KeyAccount,
        payload: dict[str, Any],
        idempotency_key: str | None,
        headers: dict[str, str],
    ) -> Reply:
        config = self.config
        latency_s = config.latency_ms / 1000
        if not (config.fault_rate and self._rng.random() < config.fault_rate):
            return self._accept(account, payload, idempotency_key, headers, latency_s)
        kind = self._rng.choice(config.fault_kinds)
        self.stats.faults[kind] += 1
        if kind == "slow":
            # Accepted before the stall, like a Gateway that handed it to Meta and then hung:
            # the client times out on a message that was in fact sent.
            return self._accept(account, payload, idempotency_key, headers, config.timeout_fault_s)
        return replace(fault_reply(kind, headers), delay_s=latency_s)

    def _play(
        self, scripted: Scripted, account: KeyAccount, body: bytes, idempotency_key: str | None
    ) -> Reply:
        if scripted.reply is not None:
            return scripted.reply
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        return self._accept(account, payload, idempotency_key, scripted.headers, scripted.delay_s)

    def _accept(
        self,
        account: KeyAccount,
        payload: Any,
        idempotency_key: str | None,
        headers: Mapping[str, str],
        delay_s: float,
    ) -> Reply:
        account.balance_milli -= MESSAGE_COST_MILLI
        self._wamid_serial += 1
        wamid = f"wamid.{self._wamid_prefix}{self._wamid_serial:012d}"
        fields_ = payload if isinstance(payload, dict) else {}
        to = fields_.get("to")
        error = self._meta.verdict(self.config, account.label, fields_, wa_id_of(to), self._clock())
        log = self._log
        log.append(
            {
                "seq": self._log_base + len(log) + 1,
                "wamid": wamid,
                "key_label": account.label,
                "to": to,
                "type": fields_.get("type"),
                "body": payload,
                "at": self._wall(),
                "idempotency_key": idempotency_key,
                "fake": self._fake,
                "meta_error": None if error is None else error.code,
            }
        )
        if len(log) > MESSAGE_LOG_MAX:
            dropped = len(log) - MESSAGE_LOG_MAX // 2
            del log[:dropped]
            self._log_base += dropped
        self.stats.accepted += 1
        return success_reply(wamid, to, headers, delay_s, error)

    def template_event(self, spec: Mapping[str, Any]) -> TemplateEvent:
        """Apply Meta's review of a template (``POST /sandbox/template_event``); the caller posts
        the event's webhook."""
        event = parse_template_event(spec)
        self.config = after_template_event(self.config, event)
        return event

    # --- administration ----------------------------------------------------------------------

    def messages(self, since: int, limit: int) -> dict[str, Any]:
        """Accepted messages with ``seq > since``, oldest first; ``next`` is the next ``since``."""
        start = max(since - self._log_base, 0)
        page = self._log[start : start + limit]
        return {"messages": page, "next": page[-1]["seq"] if page else since}

    def arrivals(self) -> list[dict[str, Any]]:
        """Every request received (the newest ARRIVALS_MAX): arrival, answer time and code."""
        return list(self._arrivals)

    def balances(self) -> dict[str, float]:
        return {a.label: a.balance_milli / 1000 for a in self._accounts.values()}

    def snapshot(self) -> dict[str, Any]:
        """The ``GET /sandbox/stats`` document."""
        stats = self.stats
        return {
            "requests": stats.requests,
            "accepted": stats.accepted,
            "by_code": dict(stats.by_code),
            "by_status": dict(stats.by_status),
            "by_key": {label: dict(codes) for label, codes in stats.by_key.items()},
            "faults": dict(stats.faults),
            "balances": self.balances(),
            "config": self.settings(),
        }

    def settings(self) -> dict[str, Any]:
        """The current knobs, keys by label only."""
        knobs = asdict(self.config)
        del knobs["api_keys"]
        knobs["fault_kinds"] = list(self.config.fault_kinds)
        for name in ("failing_recipients", "paused_templates", "disabled_templates"):
            knobs[name] = list(getattr(self.config, name))
        knobs["webhook_secret"] = "***" if self.config.webhook_secret else ""
        knobs["outage_remaining_s"] = round(max(self._outage_until - self._clock(), 0.0), 3)
        knobs["keys"] = {
            a.label: {
                "no_billing": a.no_billing,
                "waba_broken": a.waba_broken,
                "rate_per_sec": a.rate_per_sec,
                "rate_per_min": a.rate_per_min,
            }
            for a in self._accounts.values()
        }
        return knobs

    def configure(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Apply ``POST /sandbox/config``: all changes or, on any bad one, none."""
        knobs = {}
        outage_s = None
        for name, value in changes.items():
            if name == "outage_s":
                outage_s = check_number(name, value)
            elif name in KNOBS:
                knobs[name] = KNOBS[name](name, value)
            else:
                raise SandboxInputError(name, "is not a sandbox setting")
        self.config = replace(self.config, **knobs)
        if "balance" in knobs:
            for account in self._accounts.values():
                account.start_milli = account.balance_milli = to_milli(knobs["balance"])
        if "seed" in knobs:
            self._rng.seed(knobs["seed"])
        if outage_s is not None:
            self._outage_until = self._clock() + outage_s
        return self.settings()

    def upsert_key(self, spec: Mapping[str, Any]) -> str:
        """Add or change a key (``POST /sandbox/keys``); returns its label."""
        fields = {"api_key", "balance", "no_billing", "waba_broken", "rate_per_sec", "rate_per_min"}
        unknown = sorted(set(spec) - fields)
        if unknown:
            raise SandboxInputError(unknown[0], "is not a key field")
        key = check_api_key(spec.get("api_key"))
        balance = spec.get("balance")
        milli = None if balance is None else to_milli(check_number("balance", balance, -math.inf))
        no_billing = check_flag("no_billing", spec.get("no_billing", False))
        waba_broken = check_flag("waba_broken", spec.get("waba_broken", False))
        account = self._accounts.get(key)
        if account is None:
            start = to_milli(self.config.balance) if milli is None else milli
            account = KeyAccount(f"key{len(self._accounts) + 1}", start, start)
            self._accounts[key] = account
        elif milli is not None:
            account.start_milli = account.balance_milli = milli
        if "no_billing" in spec:
            account.no_billing = no_billing
        if "waba_broken" in spec:
            account.waba_broken = waba_broken
        for name in ("rate_per_sec", "rate_per_min"):
            if name in spec:  # null: back to the sandbox's limit
                value = spec[name]
                setattr(account, name, None if value is None else KNOBS[name](name, value))
        return account.label

    def topup(self, amount: Any, key_label: Any = None) -> dict[str, float]:
        """Add ``amount`` to one key's balance, or to every key's."""
        milli = to_milli(check_number("amount", amount, -math.inf))
        accounts = [a for a in self._accounts.values() if key_label in {None, a.label}]
        if not accounts:
            raise SandboxInputError("key_label", f"no key labelled {key_label!r}")
        for account in accounts:
            account.balance_milli += milli
        return self.balances()

    def queue_script(self, answers: Any) -> int:
        """Queue canned answers (``POST /sandbox/script``); returns how many are waiting."""
        if not isinstance(answers, list):
            raise SandboxInputError("answers", "must be a list")
        parsed = [parse_scripted(f"answers[{i}]", answer) for i, answer in enumerate(answers)]
        self._script.extend(parsed)
        return len(self._script)

    def reset(self) -> None:
        """Forget messages, stats, scripts, outage and rate windows; refill balances."""
        self._log_base += len(self._log)
        self._log.clear()
        self._arrivals.clear()
        self.stats = Stats()
        self._script.clear()
        self._outage_until = -math.inf
        self._meta.clear()
        for account in self._accounts.values():
            account.balance_milli = account.start_milli
            account.per_sec.clear()
            account.per_min.clear()
