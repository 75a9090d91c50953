"""A hostile Gateway, property-based: whatever it answers, nothing is lost, sent twice, crashed,
blocked or leaked.

The answers come from a real socket server (``tests.support.hostile``): any status, crafted
rate-limit and Retry-After headers, HTML, empty, truncated, huge or wrongly typed bodies, odd
message ids, the API key or pieces of it echoed back, drip-fed or silent answers. They drive the
production delivery path (``Runtime.delivery``) against the session's real Redis, and one real
``msgworker worker`` process. After each example:

- every job is in exactly one place: sent (ledger and wamid), parked (a dead letter), pending
  (on the schedule) or held (behind a halt);
- no job is called again once a call of it got a well-formed success;
- no delivery raised;
- Redis logged no command slower than 50 ms (SLOWLOG);
- no fragment of the API key (8 characters, any case) is in any key name or value.

``HOSTILE_EXAMPLES`` scales the examples (the soak raises it).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from email.utils import formatdate

import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.cluster import API_KEY, start_worker, worker_env
from tests.support.hostile import HostileGateway, Play, error, http, success
from tests.support.jobs import take
from tests.support.processes import wait_for
from worker.outcome import Result
from worker.service.runtime import Runtime
from worker.settings import Settings
from worker.store.keys import decode_part, lane_of
from worker.store.states import JobState

EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "25"))
HOSTILE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HTTP_TIMEOUT_S = 0.6
SLOW_US = 50_000  # Redis's slowlog threshold: 50 ms
FRAGMENT = 8
JOBS = 2
ROUNDS = 5  # deliveries per job and example: more than the answers queued for it

# --- what a hostile Gateway says -----------------------------------------------------------

numbers = st.sampled_from(
    [
        "0",
        "1",
        "80",
        "-1",
        "-80",
        "300000",
        "99999999999999999999999",
        "1.5",
        "abc",
        "",
        " 7 ",
        "1e3",
    ]
) | st.integers(min_value=-(10**6), max_value=10**9).map(str)
retry_after = st.sampled_from(
    [
        "0",
        "1",
        "3600",
        "3601",
        "-1",
        "soon",
        "1e9",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "Mon, 99 Foo 2024 25:61:61 GMT",
    ]
) | st.integers(min_value=0, max_value=10**6).map(lambda s: formatdate(1.7e9 + s, usegmt=True))
headers = st.fixed_dictionaries(
    {},
    optional={
        "X-RateLimit-sec-Limit": numbers,
        "X-RateLimit-sec-Remaining": numbers,
        "X-RateLimit-min-Limit": numbers,
        "X-RateLimit-min-Remaining": numbers,
        "Retry-After": retry_after,
        "Content-Type": st.sampled_from(["application/json", "text/html", "x/" + "y" * 300]),
    },
)


def escaped(text: str) -> str:
    """Every fourth character as a JSON \\u escape: no raw run of 8 survives in the bytes."""
    return "".join(f"\\u{ord(c):04x}" if i % 4 == 3 else c for i, c in enumerate(text))


# The key, pieces of it (8+ characters), its prefix after "Bearer", upper-cased, JSON-escaped.
key_echo = st.one_of(
    st.just(API_KEY),
    st.integers(0, len(API_KEY) - FRAGMENT).flatmap(
        lambda start: st.integers(start + FRAGMENT, len(API_KEY)).map(
            lambda end: API_KEY[start:end]
        )
    ),
    st.just(f"Bearer {API_KEY[:12]}"),
    st.just(API_KEY.upper()),
    st.just("x" * 290 + API_KEY),
)
json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
codes = (
    st.sampled_from(["RATE_001", "BILL_001", "AUTH_001", "GW_001", "AUTH_004", "rate_001"])
    | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=1, max_size=60).map(
        lambda s: "Z" + s
    )
    | key_echo
    | json_values
)
errors_objects = st.fixed_dictionaries(
    {},
    optional={
        "code": codes,
        "group": codes,
        "description": key_echo | st.text(max_size=400) | json_values,
        "params": st.dictionaries(
            st.sampled_from(["retry_after", "echo", "k"]), key_echo | retry_after | json_values
        )
        | json_values,
    },
)
odd_wamids = (
    st.text(max_size=300)
    | st.sampled_from([API_KEY, "w" * 5000, "wamid.\u00e9\u4e2d", "", "a b", "x" * 257])
    | key_echo
    | json_values
)
statuses = st.sampled_from(
    [200, 201, 204, 400, 401, 402, 403, 404, 409, 413, 422, 429, 500, 502, 503]
) | st.integers(100, 599)


@st.composite
def answers(draw: st.DrawFn) -> Play:  # noqa: C901, PLR0911 - one branch per kind of answer
    """One hostile answer, well framed or not, prompt, drip-fed or silent."""
    kind = draw(
        st.sampled_from(
            [
                "success",
                "odd_success",
                "error",
                "wrong_types",
                "html",
                "empty",
                "truncated",
                "huge",
                "escaped_key",
                "garbage",
                "silent",
                "drip",
            ]
        )
    )
    head = draw(headers)
    status = draw(statuses)
    if kind == "success":
        return success(f"wamid.H{draw(st.integers(0, 10**9))}", head)
    if kind == "odd_success":
        wamid = draw(odd_wamids)
        return http(
            draw(st.sampled_from([200, 201])), {"data": {"messages": [{"id": wamid}]}}, head
        )
    if kind == "error":
        body = {"isSuccess": draw(json_scalars), "errors": draw(errors_objects)}
        return http(status, body, head)
    if kind == "wrong_types":
        return http(status, json.dumps(draw(json_values)), head)
    if kind == "html":
        return http(status, f"<html><body>bad gateway {draw(key_echo)}</body></html>", head)
    if kind == "empty":
        return http(status, b"", head)
    if kind == "truncated":
        whole = json.dumps({"isSuccess": False, "errors": draw(errors_objects)})
        return http(status, whole[: draw(st.integers(0, max(0, len(whole) - 1)))], head)
    if kind == "huge":
        size = draw(st.sampled_from([70_000, 300_000]))
        return http(status, b'{"errors": {"description": "' + b"x" * size + b'"}}', head)
    if kind == "escaped_key":
        field = draw(st.sampled_from(["code", "group", "description", "wamid"]))
        text = escaped(draw(st.sampled_from([API_KEY, API_KEY.upper()])))
        if field == "wamid":
            body = '{"data": {"messages": [{"id": "' + text + '"}]}}'
            return http(200, body, head)
        return http(status, '{"errors": {"' + field + '": "' + text + '"}}', head)
    if kind == "garbage":
        return Play(draw(st.binary(min_size=0, max_size=200)))
    if kind == "silent":
        return replace(success("wamid.LATE"), silent_s=HTTP_TIMEOUT_S + 0.4, accepts=False)
    # drip: a success fed so slowly that it ends after the call's total deadline
    return replace(success("wamid.DRIP", head), drip_s=0.3, chunk=20, accepts=False)


# --- the checks ----------------------------------------------------------------------------


def fragments(text: str) -> set[str]:
    lowered = text.lower()
    return {lowered[i : i + FRAGMENT] for i in range(len(lowered) - FRAGMENT + 1)}


KEY_FRAGMENTS = fragments(API_KEY)


def stored_text(client: redis.Redis) -> list[tuple[str, str]]:
    """Every key name and value in Redis, as text (``(key, text)``)."""
    found = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == "string":
            value = [client.get(key) or ""]
        elif kind == "hash":
            value = [x for pair in client.hgetall(key).items() for x in pair]
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = list(client.smembers(key))
        elif kind == "zset":
            value = [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
        else:
            value = [repr(client.dump(key))]
        found.append((key, decode_part(key) + "\n" + "\n".join(map(str, value))))
    return found


def assert_no_key_fragment(client: redis.Redis) -> None:
    leaks = [
        (key, sorted(fragments(text) & KEY_FRAGMENTS)[:3])
        for key, text in stored_text(client)
        if fragments(text) & KEY_FRAGMENTS
    ]
    assert not leaks, f"key fragments stored: {leaks}"


def assert_redis_never_blocked(client: redis.Redis) -> None:
    slow = client.slowlog_get(10)
    assert not slow, (
        f"Redis commands over 50 ms: {[(e['duration'], e['command'][:80]) for e in slow]}"
    )


def place(runtime: Runtime, job_id: str) -> str:
    """Where the job is: exactly one of sent, parked, pending, held; else why it is lost."""
    job = runtime.jobs.get(job_id)
    assert job is not None, f"{job_id}: no record"
    client, keys = runtime.redis, runtime.keys
    member = f"{job.id}|{job.gen}"
    ledger = client.get(keys.ledger(job.account, job.key))
    dead = runtime.dead_letters.get(job.id)
    scheduled = client.zscore(keys.due(job.account, lane_of(job.priority)), member) is not None
    held = job.id in client.lrange(keys.held(job.account), 0, -1)
    places = {
        "sent": job.state is JobState.SENT and ledger == job.wamid and bool(job.wamid),
        "parked": job.state is JobState.PARKED and dead is not None,
        "pending": job.state in {JobState.QUEUED, JobState.SCHEDULED} and scheduled,
        "held": job.state is JobState.HELD and held,
    }
    found = [name for name, there in places.items() if there]
    assert len(found) == 1, f"{job_id}: state {job.state}, places {places}"
    # Nowhere else at the same time.
    assert (ledger is not None) == (found == ["sent"]) or job.state is JobState.PARKED
    assert (dead is not None) == (found == ["parked"])
    assert not (scheduled and found != ["pending"])
    return found[0]


def assert_no_call_after_a_success(gateway: HostileGateway, body: str) -> None:
    """Once a call of this job got a well-formed success, it is never called again."""
    quoted = json.dumps(body).encode()
    calls = [play for sent, play in gateway.answered if quoted in sent]
    accepted = [i for i, play in enumerate(calls) if play.accepts]
    assert len(accepted) <= 1, f"{body}: accepted {len(accepted)} times"
    if accepted:
        assert accepted[0] == len(calls) - 1, f"{body}: called again after a success"


# --- the fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway():
    server = HostileGateway()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def runtime(redis_server, gateway):
    settings_ = Settings(
        broker_url=redis_server.url,
        api_base_url=gateway.url,
        api_key=API_KEY,
        http_timeout_s=HTTP_TIMEOUT_S,
        backoff_base_s=0.1,
        backoff_cap_s=0.2,
        max_attempts=3,
        _env_file=None,
    )
    runtime = Runtime(settings_)
    runtime.redis.config_set("slowlog-log-slower-than", SLOW_US)
    yield runtime
    runtime.redis.config_set("slowlog-log-slower-than", 10_000)
    runtime.close()


def fresh(runtime: Runtime, gateway: HostileGateway) -> None:
    runtime.redis.flushall()
    runtime.redis.slowlog_reset()
    gateway.reset()


# --- the properties ------------------------------------------------------------------------


@HOSTILE
@given(plays=st.lists(answers(), min_size=1, max_size=4))
@example(plays=[http(200, '{"errors": {"description": "' + API_KEY.upper() + '"}}')])
@example(plays=[http(400, '{"errors": {"code": "' + escaped(API_KEY) + '"}}')])
@example(plays=[http(200, '{"data": {"messages": [{"id": "' + escaped(API_KEY) + '"}]}}')])
def test_any_answers_lose_nothing_send_nothing_twice_block_nothing_leak_nothing(
    runtime, gateway, plays
):
    """Deliveries through any sequence of hostile answers end with each job in one place, never
    called after a success, no exception, no slow Redis command, no key fragment in Redis."""
    fresh(runtime, gateway)
    gateway.play(*plays)
    bodies = [f"hostile {n} {os.urandom(4).hex()}" for n in range(JOBS)]
    ids = [
        runtime.producer.enqueue({"to": "905321234567", "type": "text", "text": {"body": body}})
        for body in bodies
    ]
    for _ in range(ROUNDS):
        for job_id in ids:
            job = runtime.jobs.get(job_id)
            assert job is not None
            if job.state in {JobState.QUEUED, JobState.SCHEDULED}:
                result = runtime.delivery.deliver(job.id, take(runtime, job.id))
                assert isinstance(result, Result)
    for job_id, body in zip(ids, bodies, strict=True):
        where = place(runtime, job_id)
        if where == "sent":
            # A dispatch of the sent job that comes again calls nobody.
            job = runtime.jobs.get(job_id)
            calls = len(gateway.answered)
            assert runtime.delivery.deliver(job.id, job.gen) is Result.DROPPED
            assert len(gateway.answered) == calls
        assert_no_call_after_a_success(gateway, body)
    assert_redis_never_blocked(runtime.redis)
    assert_no_key_fragment(runtime.redis)


def test_the_hostile_answers_themselves_would_leak_without_redaction(gateway):
    """The checks can fail: the key and an escaped key are fragments the check finds."""
    assert fragments(API_KEY.upper()) & KEY_FRAGMENTS
    assert json.loads(f'"{escaped(API_KEY)}"') == API_KEY
    assert not fragments(escaped(API_KEY)) & KEY_FRAGMENTS


@pytest.mark.processes
def test_a_real_worker_outlives_the_worst_answers(redis_url, gateway, tmp_path):
    """`msgworker worker` against the worst answers of issue 18 keeps delivering: every job in
    one place, nothing sent twice, Redis never blocked, no key fragment stored."""
    gateway.reset()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.config_set("slowlog-log-slower-than", SLOW_US)
    client.slowlog_reset()
    gateway.play(
        success("wamid.A", {"X-RateLimit-sec-Limit": "0", "X-RateLimit-sec-Remaining": "0"}),
        success("wamid.B", {"X-RateLimit-sec-Limit": "300000", "X-RateLimit-sec-Remaining": "0"}),
        error(429, {"code": "RATE_001"}, {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}),
        error(
            400,
            {
                "code": "GW_001",
                "description": "x" * 290 + API_KEY,
                "params": {"k": f"Bearer {API_KEY[:20]}"},
            },
        ),
        error(400, {"code": "Z" + "Q" * 30}),
        http(200, {"data": {"messages": [{"id": "w" * 5_000_000}]}}),
        http(502, "<html>upstream " + API_KEY + "</html>"),
        http(500, '{"errors": {"code": "GW_0'),
        Play(b"\x00\xffnot http at all\r\n\r\n"),
        replace(success("wamid.DRIP"), drip_s=0.5, chunk=10, accepts=False),
    )
    env = worker_env(redis_url, gateway.url, http_timeout_s="1", sandbox="false")
    worker = start_worker(env, tmp_path / "w.log", concurrency=4)
    runtime = Runtime(Settings(broker_url=redis_url, api_base_url=gateway.url, _env_file=None))
    try:
        bodies = [f"worst {n}" for n in range(12)]
        ids = [
            runtime.producer.enqueue({"to": "905321234567", "type": "text", "text": {"body": b}})
            for b in bodies
        ]

        def settled() -> bool:
            return all(runtime.jobs.get(i).state in {JobState.SENT, JobState.PARKED} for i in ids)

        wait_for(settled, timeout_s=40, what="every job sent or parked")
        assert not gateway.plays  # every answer was played
        assert worker.process.poll() is None, worker.log()[-2000:]
        for job_id, body in zip(ids, bodies, strict=True):
            place(runtime, job_id)
            assert_no_call_after_a_success(gateway, body)
        assert_redis_never_blocked(client)
        assert_no_key_fragment(client)
        assert API_KEY[:FRAGMENT] not in worker.log()
        assert "Traceback" not in worker.log()
    finally:
        worker.stop()
        runtime.close()
        client.config_set("slowlog-log-slower-than", 10_000)
        client.close()
