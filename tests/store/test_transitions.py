"""Job transitions against a real Redis: the rules that make duplicates harmless."""

from __future__ import annotations

import time

import pytest
from redis.exceptions import ResponseError

from tests.support.jobs import KEYS, add_job
from worker.outcome import Outcome
from worker.store.claims import Address, Execution, Opening, Verdict
from worker.store.ratelimit import RateLimit
from worker.store.records import NewJob
from worker.store.states import JobState

BODY = {"to": "905321234567", "type": "text", "text": {"body": "hi"}}


RATE = RateLimit(per_sec=1000, per_min=100_000)


def begin(transitions, job_id="j1", gen=1, holder="a", **kwargs):
    return transitions.begin(
        Execution(job_id, gen, holder),
        now=kwargs.get("now", time.time()),
        lease_s=5,
        probe_interval_s=5,
        rate=RATE,
    ).verdict


def test_second_dispatch_of_a_claimed_job_is_busy_and_a_settled_one_is_stale(jobs, transitions):
    """Two dispatches of one generation: one claims, the other is busy; after sending, stale."""
    add_job(jobs)
    assert begin(transitions, holder="a") is Verdict.GO
    assert begin(transitions, holder="b") is Verdict.BUSY
    transitions.mark_sent(Execution("j1", 1, "a"), "wamid.1", now=time.time())
    assert begin(transitions, holder="c") is Verdict.STALE
    assert jobs.get("j1").state is JobState.SENT


def test_begin_run_again_by_the_same_execution_gives_the_same_go(jobs, redis_client, transitions):
    """A script retried after its reply was lost: the execution that was told to call is told so
    again, with the same slot and the attempt counted once; any other execution is busy."""
    add_job(jobs)
    now = time.time()
    ahead = RateLimit(per_sec=4, per_min=100_000)
    for taken in range(2):  # two slots just taken: the job's own is a quarter second away
        redis_client.zadd(KEYS.window("default", "sec"), {f"other{taken}": now * 1000})

    def again():
        return transitions.begin(
            Execution("j1", 1, "a"), now=now, lease_s=5, probe_interval_s=5, rate=ahead
        )

    first, second = again(), again()
    assert (first.verdict, second.verdict) == (Verdict.GO, Verdict.GO)
    assert first.wait_s == second.wait_s > 0
    assert first.job.attempts == second.job.attempts == 0
    assert redis_client.hget(KEYS.job("j1"), "attempts") == "1"
    assert begin(transitions, holder="b") is Verdict.BUSY


def test_dispatch_of_an_old_generation_is_stale(jobs, transitions):
    """After a retry the job has a new generation; the old dispatch can do nothing."""
    add_job(jobs)
    assert begin(transitions, holder="a") is Verdict.GO
    assert transitions.retry(
        Execution("j1", 1, "a"),
        now=time.time(),
        delay_s=0,
        action="backoff",
        outcome=Outcome(code="HTTP_502", status=502),
    )
    assert begin(transitions, gen=1, holder="late") is Verdict.STALE
    assert begin(transitions, gen=2, holder="b") is Verdict.GO


def backs_off(transitions, *, holder: str) -> bool:
    """Whether ``holder``'s attempt at job j1 (gen 1) could settle it as a backoff."""
    return bool(
        transitions.retry(
            Execution("j1", 1, holder),
            now=time.time(),
            delay_s=1,
            action="backoff",
            outcome=Outcome(code="X"),
        )
    )


def test_finish_by_an_execution_that_lost_its_claim_writes_nothing(jobs, redis_client, transitions):
    """A slow execution whose lease ran out cannot reschedule or park the job any more."""
    add_job(jobs)
    assert begin(transitions, holder="slow") is Verdict.GO
    redis_client.delete(KEYS.claim("default", "j1"))  # the lease ran out
    assert begin(transitions, holder="rescuer") is Verdict.LOST  # it had started its call
    assert not backs_off(transitions, holder="slow")
    assert jobs.get("j1").state is JobState.SENDING


def test_sent_is_recorded_even_by_an_execution_that_lost_its_claim(jobs, redis_client, transitions):
    """A success is a fact: it is recorded whoever holds the job, and the key is marked sent."""
    add_job(jobs)
    begin(transitions, holder="slow")
    redis_client.delete(KEYS.claim("default", "j1"))
    begin(transitions, holder="rescuer")
    transitions.mark_sent(Execution("j1", 1, "slow"), "wamid.slow", now=time.time())
    assert jobs.get("j1").wamid == "wamid.slow"
    assert redis_client.get(KEYS.ledger("default", "j1")) == "wamid.slow"
    assert not backs_off(transitions, holder="rescuer")


def test_a_key_already_sent_is_a_duplicate_without_a_call(jobs, redis_client, transitions):
    """A second job with a sent key is marked sent with the first wamid, no claim taken."""
    add_job(jobs, "first", key="k")
    begin(transitions, "first", holder="a")
    transitions.mark_sent(Execution("first", 1, "a"), "wamid.k", now=time.time())
    redis_client.delete(KEYS.idempotency("default", "k"))  # as if the enqueue record expired
    add_job(jobs, "second", key="k")
    claim = transitions.begin(
        Execution("second", 1, "b"), now=time.time(), lease_s=5, probe_interval_s=5, rate=RATE
    )
    assert (claim.verdict, claim.detail) == (Verdict.DUPLICATE, "wamid.k")
    assert jobs.get("second").state is JobState.SENT


def test_a_crash_during_the_call_is_reported_as_lost(jobs, redis_client, transitions):
    """A job left 'calling' with no live claim was cut off mid-call: the verdict says so."""
    add_job(jobs)
    assert begin(transitions, holder="dead") is Verdict.GO
    assert redis_client.hget(KEYS.job("j1"), "calling") == "1"
    redis_client.delete(KEYS.claim("default", "j1"))  # the worker died; its lease ran out
    assert begin(transitions, holder="next") is Verdict.LOST


def test_halted_account_moves_the_job_to_the_hold_list(jobs, redis_client, transitions):
    """With the halt flag set, a dispatch holds the job instead of sending it."""
    add_job(jobs)
    redis_client.hset(KEYS.halt("default"), mapping={"code": "AUTH_001", "reason": "", "since": 1})
    assert begin(transitions) is Verdict.HELD
    assert redis_client.lrange(KEYS.held("default"), 0, -1) == ["j1"]
    assert jobs.get("j1").state is JobState.HELD


def test_hold_after_a_halting_answer_does_not_count_the_attempt(jobs, redis_client, transitions):
    """The call that met AUTH_001 is given back: attempts stay as they were."""
    add_job(jobs)
    begin(transitions, holder="a")
    assert jobs.get("j1").attempts == 1  # the call was counted when its slot was reserved
    applied, halt_set = transitions.hold(
        Execution("j1", 1, "a"), now=time.time(), code="AUTH_001", reason="bad key"
    )
    assert (applied, halt_set) == (True, True)
    job = jobs.get("j1")
    assert (job.state, job.attempts) == (JobState.HELD, 0)


def test_expired_job_is_reported_before_any_call(jobs, transitions):
    """Past expires_at, the verdict is expired."""
    add_job(jobs, expires_in=0.01)
    assert begin(transitions, now=time.time() + 1) is Verdict.EXPIRED


def test_a_success_that_began_before_the_breaker_opened_leaves_it_open(
    jobs, redis_client, transitions
):
    """A call made before BILL_001 opened the breaker and settled after it leaves it open (one
    alert per incident); the probe's success closes it."""
    add_job(jobs, "early")
    add_job(jobs, "billed")
    assert begin(transitions, "early", holder="e") is Verdict.GO
    assert begin(transitions, "billed", holder="b") is Verdict.GO
    _, opened = transitions.park(
        Execution("billed", 1, "b"),
        now=time.time(),
        code="BILL_001",
        reason="billing",
        record={"id": "billed"},
        open_breaker=True,
    )
    assert opened
    sent = transitions.mark_sent(Execution("early", 1, "e"), "wamid.early", now=time.time())
    assert sent.breaker_closed is False
    assert redis_client.exists(KEYS.breaker("default"))
    add_job(jobs, "probe")
    assert begin(transitions, "probe", holder="p") is Verdict.GO
    sent = transitions.mark_sent(Execution("probe", 1, "p"), "wamid.probe", now=time.time())
    assert sent.breaker_closed is True
    assert not redis_client.exists(KEYS.breaker("default"))


def test_accounts_and_keys_with_colons_do_not_collide(jobs, transitions):
    """Key ``b:c`` of account ``a`` and key ``c`` of account ``a:b``: two jobs, both kept."""
    now = time.time()
    first = NewJob(id="m1", account="a", key="b:c", message=BODY, due_at=now)
    other = {**BODY, "to": "905329999999"}
    second = NewJob(id="m2", account="a:b", key="c", message=other, due_at=now)
    assert jobs.add([first], now=now) == ["m1"]
    assert jobs.add([second], now=now) == ["m2"]
    assert (jobs.get("m1").account, jobs.get("m1").key) == ("a", "b:c")
    assert (jobs.get("m2").account, jobs.get("m2").message) == ("a:b", other)
    assert begin(transitions, "m1") is Verdict.GO
    assert begin(transitions, "m2") is Verdict.GO  # the other's claim is not this one's


def test_a_job_id_with_a_history_suffix_is_just_unknown(jobs):
    """``<id>:history`` names no job: no wrong-type error from reading a list as a hash."""
    add_job(jobs)
    assert jobs.get("j1:history") is None


def test_a_call_deferred_by_a_new_cooldown_gives_its_rate_limit_slot_back(
    jobs, redis_client, transitions
):
    """A slot reserved ahead, then a cooldown: the recheck defers the job and removes its slot
    from both windows, so the calls after the cooldown do not wait for a call never made."""
    slow = RateLimit(per_sec=1, per_min=100, max_wait_s=2.0)
    now = time.time()
    for job_id in ("j1", "j2"):
        add_job(jobs, job_id, now=now)
    first = transitions.begin(
        Execution("j1", 1, "a"), now=now, lease_s=5, probe_interval_s=5, rate=slow
    )
    second = transitions.begin(
        Execution("j2", 1, "b"), now=now, lease_s=5, probe_interval_s=5, rate=slow
    )
    assert (first.wait_s, second.verdict) == (0, Verdict.GO)
    assert second.wait_s > 0.9  # its slot is a second ahead
    windows = [KEYS.window("default", "sec"), KEYS.window("default", "min")]
    assert [redis_client.zcard(w) for w in windows] == [2, 2]

    redis_client.set(KEYS.cooldown("default"), int((now + 5) * 1000))
    assert second.job is not None
    again = transitions.recheck(
        Execution("j2", 1, "b"), second.job, now=now + 1, probe_interval_s=5
    )

    assert again.verdict is Verdict.DEFERRED
    assert [redis_client.zcard(w) for w in windows] == [1, 1]


def chained(jobs, transitions, redis_client, *, next_account: str):
    """j1 (account default) claimed and sent; its settlement begins j2 of ``next_account``."""
    add_job(jobs, "j1")
    add_job(jobs, "j2", account=next_account)
    begin(transitions, "j1")
    then = Opening(Execution("j2", 1, "b"), 5, 5, RATE)
    return transitions.mark_sent(
        Execution("j1", 1, "a"), "wamid.1", now=time.time(), then=then
    ).next


def test_a_chained_begin_of_another_account_looks_at_that_accounts_switches(
    jobs, redis_client, transitions
):
    """The settlement saw default quiet; the next job's account is halted: held, not called."""
    redis_client.hset(KEYS.halt("brand_b"), mapping={"code": "AUTH_001", "reason": "", "since": 1})
    claim = chained(jobs, transitions, redis_client, next_account="brand_b")
    assert claim.verdict is Verdict.HELD
    assert jobs.get("j2").state is JobState.HELD


def test_a_chained_begin_waits_out_a_cooldown_the_settlement_saw(jobs, redis_client, transitions):
    """A cooldown of the account 3 s long: the next job of the group goes back on the schedule
    until it ends (its wait is the cooldown's, not a call now)."""
    until_ms = int((time.time() + 3) * 1000)
    redis_client.set(KEYS.cooldown("default"), until_ms, px=3000)
    claim = chained(jobs, transitions, redis_client, next_account="default")
    assert claim.verdict is Verdict.DEFERRED
    assert claim.wait_s > 2.5
    assert jobs.get("j2").state is JobState.SCHEDULED


def test_the_floor_what_if_is_off_unless_set_and_when_set_skips_limiter_and_records(
    jobs, redis_client, transitions
):
    """msgworker's transitions take no floor: a send reserves its slot and keeps its records.
    Set (as the benchmarks' what-if does), a begin reserves no slot and a send keeps no history
    line, ledger entry or wamid index: the switch is the scripts' argument, not edited Lua."""
    assert transitions.floor is False
    for job_id, floor in (("kept", False), ("floor", True)):
        add_job(jobs, job_id=job_id, key=job_id)
        transitions.floor = floor
        assert begin(transitions, job_id=job_id) is Verdict.GO
        transitions.mark_sent(Execution(job_id, 1, "a"), f"wamid.{job_id}", now=time.time())
        slots = redis_client.zrange(KEYS.window("default", "sec"), 0, -1)
        assert any(s.startswith(f"{job_id}|1@") for s in slots) is not floor
        assert (redis_client.get(KEYS.ledger("default", job_id)) is None) is floor
        assert (redis_client.get(KEYS.wamid(f"wamid.{job_id}")) is None) is floor
        assert redis_client.llen(KEYS.history(job_id)) == (1 if floor else 2)
        assert jobs.get(job_id).state is JobState.SENT


def test_a_begin_or_settlement_given_another_jobs_keys_refuses_and_writes_nothing(
    jobs, redis_client, transitions
):
    """The keys are named from the job's address, read before the script runs: a script given
    keys named for another account, key or priority raises, and the job is as it was."""
    add_job(jobs)
    before = redis_client.hgetall(KEYS.job("j1"))
    for wrong in (
        Address("other", "j1", "normal"),
        Address("default", "not-its-key", "normal"),
        Address("default", "j1", "bulk"),
    ):
        elsewhere = Execution("j1", 1, "a", wrong)
        with pytest.raises(ResponseError, match="another job"):
            transitions.begin(elsewhere, now=time.time(), lease_s=5, probe_interval_s=5, rate=RATE)
        with pytest.raises(ResponseError, match="another job"):
            transitions.retry(elsewhere, now=time.time(), delay_s=1, action="backoff")
    assert redis_client.hgetall(KEYS.job("j1")) == before
    assert begin(transitions, holder="a") is Verdict.GO
