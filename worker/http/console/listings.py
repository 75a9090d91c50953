"""The jobs behind the overview's counts: held, due now, scheduled later, in flight.

Each list is read a page at a time by rank (``LRANGE`` / ``ZRANGE`` with offsets) over the
account's held list or schedule lanes, so a page costs one page however long the list. In-flight
jobs are one set for every account: filtered by account, a page holds those of the account among
the page's ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import redis

from worker.store.keys import LANES, Keys
from worker.store.schedule import parse_member


class Listing(StrEnum):
    """Which count's jobs a list shows (the overview's words)."""

    HELD = "held"
    DUE = "due"
    SCHEDULED = "scheduled"
    IN_FLIGHT = "in-flight"


TITLES = {
    Listing.HELD: "Held behind a halt",
    Listing.DUE: "Due now",
    Listing.SCHEDULED: "Scheduled for later",
    Listing.IN_FLIGHT: "In flight (in the broker or sending)",
}
FIELDS = ("state", "account", "attempts", "last_code", "due_at", "updated_at")


@dataclass(frozen=True)
class ListedJob:
    id: str
    state: str
    account: str
    attempts: str
    last_code: str
    due_at: float | None
    updated_at: float | None


@dataclass(frozen=True)
class JobPage:
    jobs: list[ListedJob]
    total: int  # in the whole list (before an in-flight account filter)


@dataclass(frozen=True)
class _Source:
    """One list the page reads through: how long it is, and ``read(start, stop)`` of its ids."""

    size: int
    read: Callable[[int, int], list[str]]


def job_page(
    client: redis.Redis,
    keys: Keys,
    listing: Listing,
    accounts: Sequence[str],
    *,
    start: int,
    size: int,
    now: float,
) -> JobPage:
    """Up to ``size`` jobs of the list from rank ``start``, over ``accounts`` in turn."""
    sources = _sources(client, keys, listing, accounts, now)
    ids: list[str] = []
    skip = start
    for source in sources:
        if skip >= source.size:
            skip -= source.size
            continue
        ids += source.read(skip, skip + size - len(ids) - 1)
        skip = 0
        if len(ids) >= size:
            break
    jobs = _read_jobs(client, keys, ids)
    if listing is Listing.IN_FLIGHT:
        jobs = [job for job in jobs if job.account in accounts]
    return JobPage(jobs, sum(source.size for source in sources))


def _sources(
    client: redis.Redis, keys: Keys, listing: Listing, accounts: Sequence[str], now: float
) -> list[_Source]:
    if listing is Listing.IN_FLIGHT:
        return [_zset(client, keys.leases, "-inf", "+inf")]
    if listing is Listing.HELD:
        return [_held(client, keys.held(account)) for account in accounts]
    low, high = ("-inf", now) if listing is Listing.DUE else (f"({now}", "+inf")
    return [
        _zset(client, keys.due(account, lane), low, high) for account in accounts for lane in LANES
    ]


def _held(client: redis.Redis, key: str) -> _Source:
    def read(start: int, stop: int) -> list[str]:
        return [str(i) for i in client.lrange(key, start, stop)]

    return _Source(int(client.llen(key)), read)


def _zset(client: redis.Redis, key: str, low: float | str, high: float | str) -> _Source:
    def read(start: int, stop: int) -> list[str]:
        members = client.zrangebyscore(key, low, high, start=start, num=stop - start + 1)
        return [parse_member(str(member))[0] for member in members]

    return _Source(int(client.zcount(key, low, high)), read)


def _read_jobs(client: redis.Redis, keys: Keys, ids: list[str]) -> list[ListedJob]:
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hmget(keys.job(job_id), FIELDS)
    jobs = []
    for job_id, values in zip(ids, pipe.execute(), strict=True):
        state, account, attempts, last_code, due_at, updated_at = (
            str(v) if v is not None else "" for v in values
        )
        if not state:
            continue  # settled and forgotten since the list was read
        jobs.append(
            ListedJob(
                job_id,
                state,
                account,
                attempts or "0",
                last_code,
                float(due_at) if due_at else None,
                float(updated_at) if updated_at else None,
            )
        )
    return jobs
