"""A replay's page says where its jobs stand from their own records, reading a bounded window of
them a load: a large replay (288,000 jobs) is tallied a window at a time, in turn."""

from __future__ import annotations

from tests.support.processes import wait_for
from worker.http.console.replays import Replays
from worker.store.deadletters import DeadLetters
from worker.store.history import history_event
from worker.store.keys import Keys
from worker.store.states import JobState

KEYS = Keys("tally:")
JOBS = 1_500  # three chunks of 500
PER_VIEW = 1_000  # two chunks a load


def set_jobs(client, ids: list[str], state: JobState, last_event: str) -> None:
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hset(KEYS.job(job_id), "state", state.value)
        pipe.rpush(KEYS.history(job_id), last_event)
    pipe.execute()


def job_reads(client) -> int:
    return int(client.info("commandstats").get("cmdstat_hget", {}).get("calls", 0))


def test_a_large_replays_page_reads_a_window_of_its_jobs_and_catches_up_in_turn(redis_client):
    """1,500 replayed jobs wait behind the breaker; a load reads at most 1,000 of them. Once
    all are sent, the first load still counts the chunk it did not read as waiting (not
    finished), and the next load, reading the rest, finds all 1,500 sent and the replay done."""
    ids = [f"tally{n:04d}" for n in range(JOBS)]
    set_jobs(
        redis_client, ids, JobState.SCHEDULED, history_event(0.0, "wait", action="breaker_wait")
    )
    dead_letters = DeadLetters(redis_client, KEYS, retention_s=3600)
    replays = Replays(redis_client, KEYS, dead_letters, tally_per_view=PER_VIEW)
    run_id = replays.start(ids, rate_per_s=50, what="test")
    wait_for(lambda: replays.get(run_id).state == "done", what="the replay to go through")

    before = job_reads(redis_client)
    progress = replays.get(run_id)
    assert job_reads(redis_client) - before <= PER_VIEW
    assert (progress.tally.waiting, progress.finished) == (JOBS, False)

    set_jobs(
        redis_client, ids, JobState.SENT, history_event(0.0, "attempt", code="OK", action="sent")
    )
    first, second = replays.get(run_id), replays.get(run_id)
    assert (first.tally.sent, first.tally.waiting, first.finished) == (PER_VIEW, 500, False)
    assert (second.tally.sent, second.finished) == (JOBS, True)
