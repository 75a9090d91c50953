"""The schedule's lanes on a real Redis: per account and priority, the pump dispatching only what
an account's limiter can take soon, high lane first, accounts sharing short room by weight, and
the one schedule of older versions moved into the lanes."""

from __future__ import annotations

from tests.support.jobs import KEYS, add_job, job_gens
from worker.observe.status import take_snapshot
from worker.store.claims import Execution, Verdict
from worker.store.keys import LANES
from worker.store.protocol import SPLIT_SCHEDULE
from worker.store.ratelimit import GATEWAY_SEC_WINDOW_MS, RateLimit
from worker.store.schedule import DISPATCH_COUNT_S, Pump, count_scheduled, in_slot_order
from worker.store.scripts import script_source
from worker.store.states import JobState
from worker.store.switches import Switches
from worker.store.upgrade import split_legacy_schedule

NOW = 1_900_000_000.0
# 8/s over a 0.25 s lookahead, planned at the Gateway's own second (the begins' margin paces the
# calls): the limiter can take 3 calls (now, 125 ms and 250 ms later).
RATE = RateLimit.configured(8, None)
SOON = int(0.25 * 8 / (GATEWAY_SEC_WINDOW_MS / 1000)) + 1


def pump_for(redis_client, dispatched, **options):
    options.setdefault("rate", RATE)
    return Pump(redis_client, KEYS, job_gens(dispatched), lambda: 0, depth_refresh_s=0, **options)


def begin(transitions, job_id, now):
    return transitions.begin(
        Execution(job_id, 1, f"h-{job_id}"), now=now, lease_s=60, probe_interval_s=30, rate=RATE
    )


def test_a_job_waits_in_its_account_and_priority_lane(jobs, redis_client):
    add_job(jobs, "otp", account="a", priority="high", now=NOW)
    add_job(jobs, "promo", account="b", priority="bulk", now=NOW)
    add_job(jobs, "plain", account="b", now=NOW)
    assert redis_client.zrange(KEYS.due("a", "high"), 0, -1) == ["otp|1"]
    assert redis_client.zrange(KEYS.due("b", "bulk"), 0, -1) == ["promo|1"]
    assert redis_client.zrange(KEYS.due("b", "normal"), 0, -1) == ["plain|1"]
    assert redis_client.smembers(KEYS.scheduled_accounts) == {"a", "b"}


def test_high_goes_before_normal_and_normal_before_bulk(jobs, redis_client):
    """Written bulk first, an hour earlier: with room for two, the high and the normal go."""
    add_job(jobs, "bulk", priority="bulk", due_in=-3600, now=NOW)
    add_job(jobs, "normal", due_in=-10, now=NOW)
    add_job(jobs, "high", priority="high", now=NOW)
    dispatched = []
    assert pump_for(redis_client, dispatched, max_depth=2).pump_once(NOW) == 2
    assert [job_id for job_id, _ in dispatched] == ["high", "normal"]


def test_an_account_gets_no_more_dispatches_than_its_limiter_takes_soon(
    jobs, redis_client, transitions
):
    """Fifty due at 8/s: a few dispatched; more only once those began and their slots passed."""
    for n in range(50):
        add_job(jobs, f"j{n:02}", now=NOW)
    dispatched = []
    pump = pump_for(redis_client, dispatched)
    assert pump.pump_once(NOW) == SOON
    assert pump.pump_once(NOW) == 0  # dispatched, not yet begun: they count
    for job_id, _ in dispatched:
        assert begin(transitions, job_id, NOW).verdict.value == "go"
    assert pump.pump_once(NOW) == 0  # their slots fill the lookahead
    assert pump.pump_once(NOW + 0.5) > 0  # those slots passed
    assert count_scheduled(redis_client, KEYS) == 50 - len(dispatched)


def test_one_accounts_backlog_leaves_room_for_another(jobs, redis_client):
    """a has 200 due, b one: a round dispatches b's with a's few."""
    for n in range(200):
        add_job(jobs, f"a{n:03}", account="a", due_in=-60, now=NOW)
    add_job(jobs, "b", account="b", now=NOW)
    dispatched = []
    assert pump_for(redis_client, dispatched).pump_once(NOW) == SOON + 1
    assert ("b", 1) in dispatched


def test_of_two_fresh_accounts_the_one_with_fewer_jobs_due_goes_first(jobs, redis_client):
    """a has two due, b one, both with their slots free: b's job heads the batch (an equal slot:
    the shorter run first), then a's, its second after them (the next slot of a)."""
    for n in range(2):
        add_job(jobs, f"a{n}", account="a", now=NOW)
    add_job(jobs, "b0", account="b", now=NOW)
    dispatched = []
    assert pump_for(redis_client, dispatched).pump_once(NOW) == 3
    assert [job_id for job_id, _ in dispatched] == ["b0", "a0", "a1"]


def test_a_busy_accounts_job_comes_after_the_slots_a_fresh_account_has_sooner(
    jobs, redis_client, transitions
):
    """At 8/s (125 ms apart) a's next slot is 125 ms away (one job of it began), b has none
    taken: b's first job goes ahead of a's one, a's one ahead of b's second (a tie: the shorter
    run first). Fewer jobs alone would have put a's first."""
    add_job(jobs, "a_began", account="a", now=NOW)
    began = []
    assert pump_for(redis_client, began).pump_once(NOW) == 1
    assert begin(transitions, "a_began", NOW).verdict.value == "go"
    add_job(jobs, "a0", account="a", now=NOW)
    for n in range(2):
        add_job(jobs, f"b{n}", account="b", now=NOW)
    dispatched = []
    assert pump_for(redis_client, dispatched).pump_once(NOW) == 3
    assert [job_id for job_id, _ in dispatched] == ["b0", "a0", "b1"]


def test_a_dispatch_taken_again_waits_for_its_accounts_slot_like_any_other(
    jobs, redis_client, transitions
):
    """a's dispatch was lost (its lease ran out) while a's next slot is taken: dispatched again,
    it goes after b's two jobs, which may have their slots sooner, not at the head."""
    add_job(jobs, "a_busy", account="a", now=NOW)
    assert pump_for(redis_client, []).pump_once(NOW) == 1
    assert begin(transitions, "a_busy", NOW).verdict.value == "go"
    add_job(jobs, "a_lost", account="a", now=NOW)
    assert pump_for(redis_client, [], lease_s=0.0).pump_once(NOW) == 1
    for n in range(2):
        add_job(jobs, f"b{n}", account="b", now=NOW)
    dispatched = []
    assert pump_for(redis_client, dispatched).pump_once(NOW) == 3
    assert [job_id for job_id, _ in dispatched] == ["b0", "b1", "a_lost"]


def test_jobs_are_ordered_by_the_slot_each_may_expect():
    """a's three from 200 ms, 12.5 ms apart; b's one at once; c's two from 0, 50 ms apart; d's
    one at 200 ms: d before a's first (the shorter run), c's second before both."""
    paces = [200, 12.5, 0, 0, 0, 50, 200, 0]
    ordered = in_slot_order(list("aaabccd"), [3, 1, 2, 1], paces)
    assert ordered == list("bccdaaa")
    assert in_slot_order([], [], []) == []


def test_short_room_is_shared_by_weight(jobs, redis_client):
    """Room for 4 and a high limit: weight 3 gets 3, weight 1 gets 1."""
    for n in range(10):
        add_job(jobs, f"a{n}", account="a", now=NOW)
        add_job(jobs, f"b{n}", account="b", now=NOW)
    dispatched = []
    pump = pump_for(
        redis_client, dispatched, rate=RateLimit(), weights={"a": 3, "b": 1}, max_depth=4
    )
    assert pump.pump_once(NOW) == 4
    assert sorted(job_id[0] for job_id, _ in dispatched) == ["a", "a", "a", "b"]


def test_a_dispatch_never_begun_stops_counting_after_a_while(jobs, redis_client):
    """A dispatch lost on its way holds its account's budget only DISPATCH_COUNT_S."""
    for n in range(10):
        add_job(jobs, f"j{n}", now=NOW)
    pump = pump_for(redis_client, [])
    assert pump.pump_once(NOW) == SOON
    assert pump.pump_once(NOW + DISPATCH_COUNT_S / 2) == 0
    assert pump.pump_once(NOW + DISPATCH_COUNT_S + 0.01) == SOON


def test_an_account_cooling_down_gets_nothing_dispatched(jobs, redis_client):
    """A RATE_001 cooldown past the lookahead: its jobs wait in the schedule, not in workers."""
    add_job(jobs, "j1", now=NOW)
    redis_client.set(KEYS.cooldown("default"), int((NOW + 5) * 1000))
    pump = pump_for(redis_client, [])
    assert pump.pump_once(NOW) == 0
    assert pump.pump_once(NOW + 5) == 1


def test_an_account_with_empty_lanes_leaves_the_set(jobs, redis_client):
    add_job(jobs, "j1", now=NOW)
    pump = pump_for(redis_client, [])
    pump.pump_once(NOW)
    assert redis_client.smembers(KEYS.scheduled_accounts) == {"default"}
    pump.pump_once(NOW)
    assert redis_client.smembers(KEYS.scheduled_accounts) == set()


def test_the_old_single_schedule_is_moved_into_the_lanes(jobs, redis_client):
    """Entries of the schedule of versions before lanes go to their job's lane, at their time;
    one naming no job is dropped; the jobs then go out as any other."""
    add_job(jobs, "otp", account="a", priority="high", due_in=-5, now=NOW)
    add_job(jobs, "later", account="b", due_in=60, now=NOW)
    for job_id, lane in [("otp", KEYS.due("a", "high")), ("later", KEYS.due("b", "normal"))]:
        score = redis_client.zscore(lane, f"{job_id}|1")
        redis_client.zrem(lane, f"{job_id}|1")
        redis_client.zadd(KEYS.legacy_due, {f"{job_id}|1": score})
    redis_client.zadd(KEYS.legacy_due, {"ghost|1": NOW})
    redis_client.delete(KEYS.scheduled_accounts)
    assert split_legacy_schedule(redis_client, KEYS, chunk=1) == 2
    assert not redis_client.exists(KEYS.legacy_due)
    assert redis_client.zscore(KEYS.due("a", "high"), "otp|1") == NOW - 5
    assert redis_client.zscore(KEYS.due("b", "normal"), "later|1") == NOW + 60
    snapshot = take_snapshot(
        redis_client, KEYS, queue="q", broker_depth=lambda: 0, now=NOW, accounts=("a", "b")
    )
    assert (snapshot.ready, snapshot.scheduled) == (1, 1)
    assert snapshot.accounts["a"].depth == 1
    dispatched = []
    assert pump_for(redis_client, dispatched).pump_once(NOW) == 1
    assert dispatched == [("otp", 1)]
    assert jobs.get("otp").state is JobState.QUEUED
    assert split_legacy_schedule(redis_client, KEYS) == 0


def lanes_holding(redis_client, member):
    return [lane for lane in LANES if redis_client.zscore(KEYS.due("a", lane), member) is not None]


def test_a_resumed_job_and_one_a_cooldown_deferred_go_back_to_their_own_lanes(
    jobs, redis_client, transitions
):
    """resume and recheck are given the account's lanes as keys: each job returns to the lane of
    its priority."""
    switches = Switches(redis_client, KEYS)
    for job_id, priority in (("otp", "high"), ("promo", "bulk")):
        add_job(jobs, job_id, account="a", priority=priority, now=NOW)
    switches.halt("a", reason="test")
    assert begin(transitions, "otp", NOW).verdict is Verdict.HELD
    assert switches.resume("a") == 1
    assert lanes_holding(redis_client, "otp|3") == ["high"]
    assert begin(transitions, "promo", NOW).verdict is Verdict.GO
    redis_client.set(KEYS.cooldown("a"), int((NOW + 30) * 1000))
    execution = Execution("promo", 1, "h-promo")
    claim = transitions.recheck(execution, jobs.get("promo"), now=NOW, probe_interval_s=30)
    assert claim.verdict is Verdict.DEFERRED
    assert lanes_holding(redis_client, "promo|2") == ["bulk"]
    assert redis_client.smembers(KEYS.scheduled_accounts) == {"a"}


def test_an_old_schedule_entry_is_moved_only_as_its_job_was_read(jobs, redis_client):
    """split_schedule.lua takes each entry's lane from the job as read before it runs: an entry
    whose job names another account by then stays for the next round; one whose job was read
    gone but is there by then stays too; each is moved once the round reads it again."""
    add_job(jobs, "otp", account="a", priority="high", due_in=-5, now=NOW)
    lane = KEYS.due("a", "high")
    redis_client.zrem(lane, "otp|1")
    redis_client.zadd(KEYS.legacy_due, {"otp|1": NOW - 5})
    script = redis_client.register_script(script_source(SPLIT_SCHEDULE))
    fixed = {"legacy_due": KEYS.legacy_due, "scheduled_accounts": KEYS.scheduled_accounts}
    for account, due in [("b", KEYS.due("b", "high")), ("", KEYS.legacy_due)]:
        reply = script(
            keys=SPLIT_SCHEDULE.key_list(fixed, each=[{"job": KEYS.job("otp"), "due": due}]),
            args=SPLIT_SCHEDULE.arguments(
                {}, each=[{"member": "otp|1", "account": account, "priority": "high"}]
            ),
        )
        assert SPLIT_SCHEDULE.fields(reply) == {"moved": "0", "left": "1"}
    assert not redis_client.exists(KEYS.due("b", "high"))
    assert split_legacy_schedule(redis_client, KEYS) == 1
    assert redis_client.zscore(lane, "otp|1") == NOW - 5
