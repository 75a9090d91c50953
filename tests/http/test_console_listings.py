"""The jobs behind the overview's counts, read a page at a time by rank: due now and scheduled
later split each lane at now, lanes and accounts follow one another, pages neither skip nor
repeat a job."""

from __future__ import annotations

from worker.http.console.listings import Listing, job_page
from worker.store.keys import LANES, Keys

KEYS = Keys("listings:")
NOW = 1_790_000_000.0


def schedule(client, account: str, lane: str, name: str, dues: list[float]) -> list[str]:
    """Jobs ``<name>0..`` in the lane, due at ``dues``; their ids, in due order."""
    ids = [f"{name}{n}" for n in range(len(dues))]
    for job_id, due in zip(ids, dues, strict=True):
        client.zadd(KEYS.due(account, lane), {f"{job_id}|1": due})
        client.hset(KEYS.job(job_id), mapping={"state": "scheduled", "account": account})
    return ids


def pages(client, listing: Listing, accounts: list[str], size: int) -> list[list[str]]:
    found, start = [], 0
    while True:
        page = job_page(client, KEYS, listing, accounts, start=start, size=size, now=NOW)
        if not page.jobs:
            return found
        found.append([job.id for job in page.jobs])
        start += size


def test_due_and_scheduled_pages_split_each_lane_at_now(redis_client):
    """Two accounts, jobs due before, at and after now in two lanes: the due pages list the
    first ones lane by lane, the scheduled pages the rest, 3 a page, each job once."""
    high, normal = LANES[0], LANES[1]
    a_high = schedule(redis_client, "a", high, "ah", [NOW - 5, NOW, NOW + 5, NOW + 6])
    a_normal = schedule(redis_client, "a", normal, "an", [NOW - 9, NOW + 1])
    b_normal = schedule(redis_client, "b", normal, "bn", [NOW - 1, NOW - 0.5, NOW + 60])

    due = pages(redis_client, Listing.DUE, ["a", "b"], 3)
    later = pages(redis_client, Listing.SCHEDULED, ["a", "b"], 3)

    assert due == [[*a_high[:2], a_normal[0]], b_normal[:2]]
    assert later == [[*a_high[2:], a_normal[1]], b_normal[2:]]
    assert (
        job_page(redis_client, KEYS, Listing.DUE, ["a", "b"], start=0, size=3, now=NOW).total == 5
    )
    assert pages(redis_client, Listing.SCHEDULED, ["b"], 1) == [b_normal[2:]]
