"""Every Redis key msgworker uses, under one prefix, keyed by account where state is per account.

Key names are built here and in ``lua/keys.lua`` (its twin for the scripts), and nowhere
else. Every variable part (an account, an idempotency key, a job id) is encoded before it is
joined, so parts can never run into each other: ``%``, ``:``, ``{`` and ``}`` become ``%25``,
``%3A``, ``%7B`` and ``%7D``. Account ``a`` with key ``b:c`` and account ``a:b`` with key ``c``
get different names, and no part can form a Redis Cluster hash tag. Parts made only of other
characters (``default``, the job ids msgworker makes) are unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

# An account's schedule lanes, in the order due jobs leave them (a job's ``priority``).
LANES = ("high", "normal", "bulk")
# How long a sent job (or a purged dead letter's) is kept, unless configured otherwise.
DEFAULT_RETENTION_S = 7 * 24 * 3600

# A job's own keys, by the names the lifetimes in lua/lib/keys.lua take them (``own_keys``).
OWN_KEYS = ("job", "history", "idempotency", "ledger")

_UNSAFE = re.compile(r"[%:{}]")


def encode_part(part: str) -> str:
    """One variable part of a key name, with its separators and hash-tag braces escaped."""
    return _UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}", part)


def lane_of(priority: str | None) -> str:
    """The lane a job of this priority waits in (``lane_of`` in keys.lua): normal unless high or
    bulk."""
    return priority if priority in {"high", "bulk"} else "normal"


def template_field(name: str, language: str) -> str:
    """A template as the job's ``template`` field and its hold's hash field name it:
    ``<name>|<language>``, each part encoded (so neither holds the ``:`` that ends it in
    ``template_held_jobs``)."""
    return f"{encode_part(name)}|{encode_part(language)}"


def decode_part(encoded: str) -> str:
    """The part ``encode_part`` made this from."""
    return unquote(encoded)


@dataclass(frozen=True)
class Keys:
    """Key names for one prefix (``msgworker:`` by default)."""

    prefix: str = "msgworker:"

    # Jobs and their schedule
    def job(self, job_id: str) -> str:
        """Hash: the job record (state, attempts, last code, wamid, timestamps, generation)."""
        return f"{self.prefix}job:{encode_part(job_id)}"

    def history(self, job_id: str) -> str:
        """List: the job's events, oldest first (JSON)."""
        return f"{self.prefix}job:{encode_part(job_id)}:history"

    def due(self, account: str, lane: str) -> str:
        """Sorted set: the account's ``job_id|gen`` of one lane (``LANES``) by the time each may
        be sent (now, later, after a wait)."""
        return f"{self.prefix}due:{encode_part(account)}:{encode_part(lane)}"

    @property
    def scheduled_accounts(self) -> str:
        """Set: the accounts whose lanes may hold jobs (the pump drops those found empty)."""
        return f"{self.prefix}due-accounts"

    @property
    def legacy_due(self) -> str:
        """Sorted set: the one schedule of versions before lanes, emptied into them at start."""
        return f"{self.prefix}due"

    def dispatched(self, account: str) -> str:
        """Sorted set: ``job_id|gen`` dispatched and not yet begun, by when to stop counting it
        against the account's rate-limit budget."""
        return f"{self.prefix}dispatched:{encode_part(account)}"

    @property
    def leases(self) -> str:
        """Sorted set: ``job_id|gen`` dispatched or in flight, by when to dispatch it again."""
        return f"{self.prefix}leases"

    @property
    def replicated(self) -> str:
        """String: a counter written just before WAIT, so that WAIT covers every earlier write."""
        return f"{self.prefix}replicated"

    @property
    def enqueued_count(self) -> str:
        """String: jobs ever enqueued (a cluster-wide counter for metrics)."""
        return f"{self.prefix}stats:enqueued"

    def answers_in_second(self, second: int) -> str:
        """Hash: the answers settled during this Unix second, by code (``OK`` for a message
        sent; kept two minutes)."""
        return f"{self.prefix}stats:answers:{second}"

    def held(self, account: str) -> str:
        """List: ``job_id`` of jobs held behind the account's halt, released by resume."""
        return f"{self.prefix}held:{encode_part(account)}"

    # Template holds (WhatsApp paused or disabled a template)
    def template_holds(self, account: str) -> str:
        """Hash: the account's held templates, ``<name>|<language>`` (``template_field``) ->
        JSON {since, reason, code, by}."""
        return f"{self.prefix}templates-held:{encode_part(account)}"

    def template_held_jobs(self, account: str) -> str:
        """Sorted set, all scores 0: ``<template field>:<job_id>`` of the jobs held behind the
        account's template holds, so one template's jobs are one lexical range (counted and
        released without a scan)."""
        return f"{self.prefix}templates-held:{encode_part(account)}:jobs"

    # Send-once
    def idempotency(self, account: str, key: str) -> str:
        """String: the job id first enqueued with this idempotency key."""
        return f"{self.prefix}idem:{encode_part(account)}:{encode_part(key)}"

    def batch(self, accounts: str, key: str) -> str:
        """String: the job ids (a JSON list) of the batch first enqueued with this key on these
        accounts (their names sorted and comma-joined: one batch's key is its accounts' own)."""
        return f"{self.prefix}batch:{encode_part(accounts)}:{encode_part(key)}"

    def ledger(self, account: str, key: str) -> str:
        """String: the wamid this idempotency key was sent as; its presence means sent."""
        return f"{self.prefix}sent:{encode_part(account)}:{encode_part(key)}"

    def claim(self, account: str, key: str) -> str:
        """String with a lease: the job execution currently sending this key."""
        return f"{self.prefix}claim:{encode_part(account)}:{encode_part(key)}"

    # Delivery status
    def wamid(self, wamid: str) -> str:
        """String: the job id a wamid was sent as (kept as long as the job's record)."""
        return f"{self.prefix}wamid:{encode_part(wamid)}"

    def early_statuses(self, wamid: str) -> str:
        """List: statuses that came for a wamid before its send was recorded (kept 60 s)."""
        return f"{self.prefix}wamid:{encode_part(wamid)}:early"

    @property
    def early_arrivals(self) -> str:
        """Sorted set: the wamids that have ``early_statuses``, by their last status's arrival
        (ms): the oldest go beyond the cap (one set for the deployment, as such a status names
        no account)."""
        return f"{self.prefix}early-arrivals"

    # Account switches
    def halt(self, account: str) -> str:
        """Hash: present while the account is halted (code, reason, since, by)."""
        return f"{self.prefix}halt:{encode_part(account)}"

    def halt_probe(self, account: str) -> str:
        """String with a lease: a probe of the account's halt is due no sooner than it ends."""
        return f"{self.prefix}halt:{encode_part(account)}:probe"

    def breaker(self, account: str) -> str:
        """Hash: present while the account's billing breaker is open (since, code, half_open)."""
        return f"{self.prefix}breaker:{encode_part(account)}"

    def breaker_probe(self, account: str) -> str:
        """String with a lease: the job allowed through as the breaker's probe."""
        return f"{self.prefix}breaker:{encode_part(account)}:probe"

    @property
    def switched(self) -> str:
        """Pub/sub channel: an account's name each time its halt, breaker or cooldown is set."""
        return f"{self.prefix}switched"

    def cooldown(self, account: str) -> str:
        """String with a TTL: every worker of the account waits until the time it holds."""
        return f"{self.prefix}cooldown:{encode_part(account)}"

    def bulk_paused(self, account: str) -> str:
        """String with a TTL: the account's bulk lane is not dispatched until the time it holds
        (ms; Meta doubted the sender's standing)."""
        return f"{self.prefix}bulk-paused:{encode_part(account)}"

    def window(self, account: str, span: str) -> str:
        """Sorted set: the requests of the sliding window ``sec`` or ``min``."""
        return f"{self.prefix}rate:{encode_part(account)}:{encode_part(span)}"

    def pairs(self, account: str) -> str:
        """Hash: the account's recipients lately sent to, each with its calls that count
        against its pair pacing (``lua/lib/pairs.lua``)."""
        return f"{self.prefix}pairs:{encode_part(account)}"

    def limits(self, account: str) -> str:
        """Hash: the limits learned from the Gateway's headers (sec, min) and when they were last
        written or renewed (renewed, ms)."""
        return f"{self.prefix}rate:{encode_part(account)}:limits"

    # Dead letters
    def dead_letter(self, job_id: str) -> str:
        """String: one DLQ record (JSON)."""
        return f"{self.prefix}dlq:record:{encode_part(job_id)}"

    @property
    def dead_letter_index(self) -> str:
        """Sorted set: parked job ids by parked_at."""
        return f"{self.prefix}dlq:index"

    @property
    def dead_letter_counts(self) -> str:
        """Hash: DLQ records by code."""
        return f"{self.prefix}dlq:counts"

    # Workers
    @property
    def workers(self) -> str:
        """Sorted set: worker commands by the last time each said it was alive."""
        return f"{self.prefix}workers"

    @property
    def worker_info(self) -> str:
        """Hash: worker command name -> what it said of itself at its last heartbeat (JSON)."""
        return f"{self.prefix}workers:info"

    @property
    def pending_kept(self) -> str:
        """String: present once the expiry older versions gave pending jobs has been removed."""
        return f"{self.prefix}pending-kept"

    # Alerts
    def incident(self, kind: str, account: str) -> str:
        """Hash: present while an incident of this kind is open (one alert per incident)."""
        return f"{self.prefix}incident:{encode_part(kind)}:{encode_part(account)}"

    def exhausted(self, account: str) -> str:
        """Sorted set: recent retries_exhausted parks, for the rate alert."""
        return f"{self.prefix}exhausted:{encode_part(account)}"

    # The web console (settled things only: each of these has a TTL)
    def console_session(self, digest: str) -> str:
        """Hash: a console session (its CSRF token), under the SHA-256 of the cookie's value."""
        return f"{self.prefix}console:session:{encode_part(digest)}"

    def console_login_failed(self, client: str) -> str:
        """Sorted set: the times of the latest failed console logins from one client address."""
        return f"{self.prefix}console:login-failed:{encode_part(client)}"

    def console_login_slot(self, client: str) -> str:
        """String: held while a braked client address waits for its next login attempt."""
        return f"{self.prefix}console:login-slot:{encode_part(client)}"

    def console_replay(self, run_id: str) -> str:
        """Hash: the progress of one replay started from the console."""
        return f"{self.prefix}console:replay:{encode_part(run_id)}"

    def console_chart(self, bucket: int) -> str:
        """Hash: the console's chart figures of one 10-second bucket (its start, Unix seconds):
        the answers settled in it by code (kept 16 minutes)."""
        return f"{self.prefix}console:chart:{bucket}"

    def console_replay_jobs(self, run_id: str) -> str:
        """List: the job ids one console replay covers, to tell how far each has got."""
        return f"{self.prefix}console:replay:{encode_part(run_id)}:jobs"

    def account_of(self, kind: str, key: str) -> str | None:
        """The account a per-account key (``halt``, ``breaker``, ``held``…) names, else None."""
        head = f"{self.prefix}{kind}:"
        if not key.startswith(head):
            return None
        rest = key[len(head) :]
        return None if ":" in rest else decode_part(rest)


def own_keys(keys: Keys, job_id: str, account: str, key: str) -> dict[str, str]:
    """A job's own keys by their ``OWN_KEYS`` names: its record and history, and its idempotency
    key's entry and ledger entry (``own_keys`` in keys.lua)."""
    names = (
        keys.job(job_id),
        keys.history(job_id),
        keys.idempotency(account, key),
        keys.ledger(account, key),
    )
    return dict(zip(OWN_KEYS, names, strict=True))
