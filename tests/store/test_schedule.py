"""The pump (worker/store/schedule.py) on a real Redis: due jobs go to the broker in order, a few
at a time; future ones wait in the schedule; a lost dispatch comes back when its lease runs out."""

from __future__ import annotations

import threading
import time

from tests.support.jobs import KEYS, add_job, job_gens
from tests.support.processes import wait_for
from worker.store.schedule import Pump, parse_member
from worker.store.states import JobState

NOW = 1_900_000_000.0


def pump_for(redis_client, dispatched, **options):
    return Pump(redis_client, KEYS, job_gens(dispatched), lambda: 0, depth_refresh_s=0, **options)


def test_due_jobs_are_dispatched_in_the_order_they_fell_due(jobs, redis_client):
    """Written in any order, jobs leave the schedule earliest due first."""
    for job_id, due_in in [("second", -20), ("third", -10), ("first", -30)]:
        add_job(jobs, job_id, due_in=due_in, now=NOW)
    dispatched = []
    assert pump_for(redis_client, dispatched).pump_once(NOW) == 3
    assert [job_id for job_id, _ in dispatched] == ["first", "second", "third"]


def test_a_future_job_waits_in_the_schedule_until_its_time(jobs, redis_client):
    """A job due in a minute is not dispatched before then; at its time it goes, as queued."""
    add_job(jobs, "later", due_in=60, now=NOW)
    dispatched = []
    pump = pump_for(redis_client, dispatched)
    assert pump.pump_once(NOW + 59) == 0
    assert jobs.get("later").state is JobState.SCHEDULED
    assert pump.pump_once(NOW + 60) == 1
    assert dispatched == [("later", 1)]
    assert jobs.get("later").state is JobState.QUEUED


def test_a_dispatched_job_holds_a_lease_instead_of_its_schedule_entry(jobs, redis_client):
    """Dispatched: out of the schedule, in the leases until now + the lease."""
    add_job(jobs, "j1", now=NOW)
    pump_for(redis_client, [], lease_s=10).pump_once(NOW)
    assert redis_client.zscore(KEYS.due("default", "normal"), "j1|1") is None
    assert redis_client.zscore(KEYS.leases, "j1|1") == NOW + 10


def test_one_round_takes_at_most_a_batch(jobs, redis_client):
    """Ten due jobs and a batch of four: four per round, the rest on the next rounds."""
    for n in range(10):
        add_job(jobs, f"j{n}", due_in=n - 10, now=NOW)
    dispatched = []
    pump = pump_for(redis_client, dispatched, batch=4)
    assert [pump.pump_once(NOW) for _ in range(4)] == [4, 4, 2, 0]
    assert [job_id for job_id, _ in dispatched] == [f"j{n}" for n in range(10)]


def test_due_jobs_go_before_stranded_leases(jobs, redis_client):
    """With room for one, a due job is dispatched before a dispatch whose lease ran out."""
    add_job(jobs, "stranded", now=NOW)
    dispatched = []
    pump = pump_for(redis_client, dispatched, batch=1, lease_s=10)
    pump.pump_once(NOW)
    add_job(jobs, "fresh", now=NOW + 20)
    assert pump.pump_once(NOW + 20) == 1
    assert pump.pump_once(NOW + 20) == 1
    assert [job_id for job_id, _ in dispatched] == ["stranded", "fresh", "stranded"]


def test_the_loop_outlives_a_failing_dispatch_and_runs_its_chore(jobs, redis_client):
    """``run``: a dispatch that fails once is retried (the job comes back when its lease ends),
    the chore runs beside the pumping, and the loop ends when told to stop."""
    add_job(jobs, "j1")
    dispatched, chores = [], []

    def dispatch(batch):
        if not dispatched:
            dispatched.append(None)
            raise ConnectionError("broker down")
        job_gens(dispatched)(batch)

    pump = Pump(
        redis_client,
        KEYS,
        dispatch,
        lambda: 0,
        lease_s=0.2,
        idle_s=0.01,
        depth_refresh_s=0,
        chore=lambda: chores.append(1),
        chore_interval_s=0,
    )
    stop = threading.Event()
    loop = threading.Thread(target=pump.run, args=(stop,))
    loop.start()
    try:
        wait_for(lambda: ("j1", 1) in dispatched, what="the job dispatched after the failure")
    finally:
        stop.set()
        loop.join(5)
    assert not loop.is_alive()
    assert chores


def test_pump_dispatches_due_jobs_only_and_lost_dispatches_come_back(jobs, redis_client):
    """Due jobs are dispatched once; an unsettled dispatch is dispatched again after its lease."""
    add_job(jobs, "now")
    add_job(jobs, "later", due_in=60)
    dispatched = []
    pump = Pump(redis_client, KEYS, job_gens(dispatched), lambda: 0, lease_s=10, depth_refresh_s=0)
    now = time.time()
    assert pump.pump_once(now) == 1
    assert dispatched == [("now", 1)]
    assert pump.pump_once(now + 1) == 0  # leased, not dispatched again
    assert pump.pump_once(now + 11) == 1  # the lease ran out with nobody settling it
    assert dispatched == [("now", 1), ("now", 1)]


def test_pump_keeps_the_broker_shallow(jobs, redis_client):
    """With the broker at its depth limit nothing is dispatched; with room, only what fits."""
    for n in range(10):
        add_job(jobs, f"j{n}")
    dispatched = []
    depth = {"now": 1000}
    pump = Pump(
        redis_client,
        KEYS,
        job_gens(dispatched),
        lambda: depth["now"],
        max_depth=1000,
        depth_refresh_s=0,
    )
    assert pump.pump_once() == 0
    depth["now"] = 996
    assert pump.pump_once() == 4


def test_parse_member():
    """Schedule members are id|gen; ids may contain the separator."""
    assert parse_member("a|b|7") == ("a|b", 7)


def test_pump_asks_the_broker_its_depth_once_a_second_and_counts_its_dispatches(jobs, redis_client):
    """Between depth reads the pump counts what it dispatched, so it never overfills the broker."""
    for n in range(10):
        add_job(jobs, f"j{n}")
    asked = []
    dispatched = []

    def depth():
        asked.append(1)
        return 0

    pump = Pump(redis_client, KEYS, job_gens(dispatched), depth, max_depth=4, depth_refresh_s=1.0)
    now = time.time()
    assert pump.pump_once(now) == 4
    assert pump.pump_once(now + 0.1) == 0  # its own four fill the broker as far as it knows
    assert pump.pump_once(now + 1.1) == 4  # a fresh read: the broker was drained meanwhile
    assert len(asked) == 2


def test_a_dispatch_carries_its_jobs_address(jobs, redis_client):
    """The pump hands on each job's account, idempotency key and priority with its id and
    generation, as promote.lua read them: a worker names the job's keys without a read; a job
    gone has an empty address."""
    add_job(jobs, "otp", account="a", priority="high", key="login-7", now=NOW)
    add_job(jobs, "gone", now=NOW)
    redis_client.delete(KEYS.job("gone"))
    dispatched = []
    Pump(redis_client, KEYS, dispatched.extend, lambda: 0, depth_refresh_s=0).pump_once(NOW)
    assert sorted(dispatched) == [("gone", 1, "", "", ""), ("otp", 1, "a", "login-7", "high")]
