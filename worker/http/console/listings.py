"""The jobs behind the overview's counts: held, due now, scheduled later, in flight.

Each list is read a page at a time by rank (``LRANGE`` / ``ZRANGE`` by rank) over the
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
        return [_ranks(client, keys.leases, 0, int(client.zcard(keys.leases)))]
    if listing is Listing.HELD:
        return [_held(client, keys.held(account)) for account in accounts]
    lanes = [keys.due(account, lane) for account in accounts for lane in LANES]
    pipe = client.pipeline(transaction=False)
    for key in lanes:
        pipe.zcount(key, "-inf", now)
        pipe.zcard(key)
    sizes = pipe.execute()
    # A lane is ordered by when each job is due: those due now come first, then those later.
    return [
        _ranks(client, key, 0, due)
        if listing is Listing.DUE
        else _ranks(client, key, due, all_ - due)
        for key, due, all_ in zip(lanes, sizes[::2], sizes[1::2], strict=True)
    ]


def _held(client: redis.Redis, key: str) -> _Source:
    def read(start: int, stop: int) -> list[str]:
        return [str(i) for i in client.lrange(key, start, stop)]

    return _Source(int(client.llen(key)), read)


def _ranks(client: redis.Redis, key: str, first: int, size: int) -> _Source:
    """The ``size`` members of a sorted set from rank ``first`` on, read by rank: ``ZRANGE``
    finds a rank in O(log n), where ``ZRANGEBYSCORE``'s offset walks every member before it."""

    def read(start: int, stop: int) -> list[str]:
        stop = min(stop, size - 1)
        if start > stop:
            return []
        members = client.zrange(key, first + start, first + stop)
        return [parse_member(str(member))[0] for member in members]

    return _Source(size, read)


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
