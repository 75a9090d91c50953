"""The dead-letter queue: parked jobs, their records, and the drain after a fix."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import astuple, dataclass, field, fields
from typing import Any

import redis

from worker.store.history import history_event
from worker.store.keys import LANES, Keys, own_keys
from worker.store.protocol import PURGE, REPLAY
from worker.store.scripts import load_script

REPLAY_CHUNK = 200
# The dead-letter reason of a job whose user stopped marketing messages (WhatsApp's 131050).
OPTED_OUT = "opted_out"


@dataclass(frozen=True)
class DeadLetter:
    """One dead-letter record, kept until purged or aged out. Times are Unix seconds."""

    id: str
    idempotency_key: str
    account: str
    message: dict[str, Any]
    code: str
    group: str | None
    status: int | None
    description: str
    params: dict[str, Any]
    reason: str
    attempts: int
    enqueued_at: float
    parked_at: float
    expires_at: float | None = None
    wamid: str | None = None  # undelivered: the wamid it was sent as (a replay sends it again)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, text: str) -> DeadLetter:
        """Read a record of any version: unknown fields ignored, missing optional ones defaulted."""
        raw = json.loads(text)
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        values.setdefault("group", None)
        values.setdefault("status", None)
        values.setdefault("description", "")
        values.setdefault("params", {})
        values.setdefault("attempts", 0)
        return cls(**values)

    @classmethod
    def readable(cls, text: str | bytes | None) -> DeadLetter | None:
        """The record in ``text``, or None when there is none or it does not parse (no version
        writes such a record, but Redis keeps whatever it is given: one must not hide the
        rest)."""
        if not text:
            return None
        try:
            return cls.from_json(text.decode() if isinstance(text, bytes) else text)
        except (ValueError, TypeError, AttributeError):  # UnicodeDecodeError is a ValueError
            return None


@dataclass(frozen=True)
class ReplayReport:
    """What a replay did with its records: sent again, or skipped (already sent, delivered by
    WhatsApp, expired) or gone."""

    replayed: int = 0
    already_sent: int = 0
    expired: int = 0
    missing: int = 0
    delivered: int = 0  # WhatsApp delivered it (a `failed` came first): never sent again

    def __add__(self, other: ReplayReport) -> ReplayReport:
        return ReplayReport(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    @property
    def done(self) -> int:
        """How many records the replay has dealt with, whichever way."""
        return sum(astuple(self))


@dataclass(frozen=True)
class Selection:
    """Which dead letters an operator means: by account, code, id, since a time; all when
    empty. ``limit`` counts matching records."""

    account: str | None = None
    code: str | None = None
    ids: Sequence[str] = field(default_factory=tuple)
    since: float | None = None
    limit: int | None = None


def leave_out_opted_out(
    records: Iterable[DeadLetter], *, named: bool, include_opted_out: bool
) -> tuple[list[DeadLetter], int]:
    """The records a replay sends, and how many opted-out ones it leaves in the DLQ: a replay by
    code or of everything skips the users who stopped marketing unless asked to include them;
    one of ids the operator ``named`` sends what it names."""
    kept: list[DeadLetter] = []
    left = 0
    for record in records:
        if record.reason == OPTED_OUT and not (named or include_opted_out):
            left += 1
        else:
            kept.append(record)
    return kept, left


def dead_letter_counts(client: redis.Redis, keys: Keys) -> dict[str, int]:
    """DLQ records by code."""
    raw: dict[str, str] = client.hgetall(keys.dead_letter_counts)  # type: ignore[assignment]
    return {str(k): int(v) for k, v in raw.items() if int(v) > 0}


@dataclass(frozen=True)
class DeadLetterPage:
    """One page of the DLQ, oldest first; ``next_rank`` is where the next page starts in the
    index (None: nothing after it)."""

    records: list[DeadLetter]
    next_rank: int | None


def dead_letter_page(
    client: redis.Redis,
    keys: Keys,
    *,
    start_rank: int,
    size: int,
    account: str | None = None,
    code: str | None = None,
    read_max: int = 10 * REPLAY_CHUNK,
) -> DeadLetterPage:
    """Up to ``size`` records from rank ``start_rank`` of the index on, by rank: page N of a
    large DLQ costs one page, not N. With a filter, at most ``read_max`` records are read past
    ``start_rank``; a page cut short there still says where to go on."""
    wanted = Selection(account=account, code=code)
    step = size + 1 if account is None and code is None else REPLAY_CHUNK
    records: list[DeadLetter] = []
    rank = start_rank
    while rank < start_rank + max(read_max, size + 1):
        ids = [str(i) for i in client.zrange(keys.dead_letter_index, rank, rank + step - 1)]
        if not ids:
            return DeadLetterPage(records, None)
        texts = client.mget([keys.dead_letter(i) for i in ids])
        for offset, text in enumerate(texts):
            record = DeadLetter.readable(text)
            if record is None or not _matches(record, wanted):
                continue
            if len(records) == size:
                return DeadLetterPage(records, rank + offset)
            records.append(record)
        rank += len(ids)
    return DeadLetterPage(records, rank)


def _matches(record: DeadLetter, selection: Selection) -> bool:
    if selection.code and record.code != selection.code:
        return False
    return not (selection.account and record.account != selection.account)


class DeadLetters:
    """Reads, replays and purges DLQ records.

    A dead letter waits for as long as it takes, unless ``max_age_s`` is set: then the older
    ones are removed by ``remove_old`` (which the workers call now and then). A purged one's job
    is kept ``retention_s`` from then, as a sent one is.
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        retention_s: float,
        max_age_s: float | None = None,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._retention_s = retention_s
        self._max_age_s = max_age_s
        self._replay = load_script(client, REPLAY)
        self._purge = load_script(client, PURGE)

    def counts(self) -> dict[str, int]:
        """Records by code."""
        return dead_letter_counts(self._redis, self._keys)

    def get(self, job_id: str) -> DeadLetter | None:
        text = self._redis.get(self._keys.dead_letter(job_id))
        return DeadLetter.readable(text)

    def select(self, selection: Selection) -> Iterator[DeadLetter]:
        """Matching records, oldest first (read a chunk per round trip)."""
        if selection.ids:
            candidates: list[str] = list(selection.ids)
        else:
            low = selection.since if selection.since is not None else "-inf"
            candidates = [
                str(i) for i in self._redis.zrangebyscore(self._keys.dead_letter_index, low, "+inf")
            ]
        found = 0
        for start in range(0, len(candidates), REPLAY_CHUNK):
            chunk = candidates[start : start + REPLAY_CHUNK]
            texts = self._redis.mget([self._keys.dead_letter(i) for i in chunk])
            for text in texts:
                record = DeadLetter.readable(text)
                if record is None or not _matches(record, selection):
                    continue
                yield record
                found += 1
                if selection.limit is not None and found >= selection.limit:
                    return

    def replay(
        self,
        ids: Sequence[str],
        *,
        rate_per_s: float,
        now: float | None = None,
        offset_s: float = 0.0,
    ) -> ReplayReport:
        """Schedule these records' jobs again, ``rate_per_s`` apart, and drop them from the DLQ;
        a job already sent or delivered is recorded as sent instead, an expired one stays."""
        now = time.time() if now is None else now
        event = history_event(now, "replayed", action="replay")
        report = ReplayReport()
        fixed = {
            "dead_letter_index": self._keys.dead_letter_index,
            "dead_letter_counts": self._keys.dead_letter_counts,
            "scheduled_accounts": self._keys.scheduled_accounts,
        }
        for start in range(0, len(ids), REPLAY_CHUNK):
            chunk = ids[start : start + REPLAY_CHUNK]
            owners = self._owners(chunk)
            offset = offset_s + report.replayed / rate_per_s
            values = {
                "now": now,
                "start_offset_s": offset,
                "interval_s": 1 / rate_per_s,
                "retention_s": self._retention_s,
                "event": event,
            }
            each_key = [
                {
                    "dead_letter": self._keys.dead_letter(i),
                    **own_keys(self._keys, i, account, key),
                    "breaker": self._keys.breaker(account),
                    "breaker_probe": self._keys.breaker_probe(account),
                    **{f"due_{lane}": self._keys.due(account, lane) for lane in LANES},
                }
                for i, (account, key) in zip(chunk, owners, strict=True)
            ]
            each = [
                {"id": i, "account": account, "key": key}
                for i, (account, key) in zip(chunk, owners, strict=True)
            ]
            reply = self._replay(
                keys=REPLAY.key_list(fixed, each=each_key), args=REPLAY.arguments(values, each=each)
            )
            counts = REPLAY.fields(reply)
            report += ReplayReport(**{name: int(n) for name, n in counts.items()})
        return report

    def _owners(self, ids: Sequence[str]) -> list[tuple[str, str]]:
        """The account and idempotency key each of these dead letters names, as the scripts
        that take a dead letter's job's keys compare them (``_owner``)."""
        return [_owner(text) for text in self._redis.mget([self._keys.dead_letter(i) for i in ids])]

    def purge(self, ids: Sequence[str]) -> int:
        """Remove these records for good; returns how many were removed."""
        return self._remove(ids, forget=False, parked_before=None)

    def remove_old(self, *, now: float | None = None, limit: int = REPLAY_CHUNK) -> int:
        """Remove up to ``limit`` dead letters parked longer than ``max_age_s`` ago, with their
        jobs (payload included); returns how many. Does nothing when there is no maximum age."""
        if self._max_age_s is None:
            return 0
        now = time.time() if now is None else now
        cutoff = now - self._max_age_s
        old = self._redis.zrangebyscore(self._keys.dead_letter_index, "-inf", cutoff, 0, limit)
        return self._remove([str(i) for i in old], forget=True, parked_before=cutoff)

    def _remove(self, ids: Sequence[str], *, forget: bool, parked_before: float | None) -> int:
        removed = 0
        values = {
            "retention_s": self._retention_s,
            "forget": "1" if forget else "0",
            "parked_before": "" if parked_before is None else repr(parked_before),
        }
        keys = {
            "dead_letter_index": self._keys.dead_letter_index,
            "dead_letter_counts": self._keys.dead_letter_counts,
        }
        for start in range(0, len(ids), REPLAY_CHUNK):
            chunk = ids[start : start + REPLAY_CHUNK]
            owners = self._owners(chunk)
            each_key = [
                {"dead_letter": self._keys.dead_letter(i), **own_keys(self._keys, i, account, key)}
                for i, (account, key) in zip(chunk, owners, strict=True)
            ]
            each = [
                {"id": i, "account": account, "key": key}
                for i, (account, key) in zip(chunk, owners, strict=True)
            ]
            removed += int(
                self._purge(
                    keys=PURGE.key_list(keys, each=each_key),
                    args=PURGE.arguments(values, each=each),
                )
            )
        return removed


def _owner(text: str | bytes | None) -> tuple[str, str]:
    """The account and idempotency key a dead letter's record names ('' where it names none,
    or is no record at all), as purge.lua compares them."""
    try:
        record = json.loads(text) if text else None
    except ValueError:
        return "", ""
    if not isinstance(record, dict):
        return "", ""
    account, key = record.get("account"), record.get("idempotency_key")
    if isinstance(account, str) and isinstance(key, str):
        return account, key
    return "", ""
