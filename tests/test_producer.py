"""worker/producer.py: producers fail fast when Redis is down or hung (Unavailable within the
Redis timeout, exit 69 from the CLI), and refuse what must never be enqueued."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
import redis

from tests.support.cluster import BIN
from tests.support.processes import free_port
from worker.errors import InvalidMessage, Unavailable
from worker.producer import Producer
from worker.service.runtime import Runtime
from worker.settings import Settings
from worker.store.connect import connect_redis_fail_fast
from worker.store.jobs import JobStore
from worker.store.keys import Keys

TIMEOUT_S = 2.0
MESSAGE = {"to": "905321234567", "type": "text", "text": {"body": "hello"}}


def _runtime(url: str) -> Runtime:
    return Runtime(Settings(broker_url=url, redis_timeout_s=TIMEOUT_S, _env_file=None))


def _refused_within_the_timeout(runtime: Runtime) -> float:
    started = time.monotonic()
    with pytest.raises(Unavailable):
        runtime.producer.enqueue(MESSAGE)
    elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT_S + 1, elapsed
    return elapsed


def test_enqueue_to_a_port_nobody_listens_on_raises_unavailable_at_once():
    """Nothing listening: Unavailable, well within the timeout (it used to take 9.5 s)."""
    runtime = _runtime(f"redis://127.0.0.1:{free_port()}/0")
    try:
        assert _refused_within_the_timeout(runtime) < 1
    finally:
        runtime.close()


def test_enqueue_after_redis_stopped_raises_unavailable_within_the_timeout(own_redis):
    """A Redis that went away under a pooled connection: Unavailable, not a long retry."""
    runtime = _runtime(own_redis.url)
    try:
        runtime.producer.enqueue(MESSAGE)
        own_redis.stop()
        _refused_within_the_timeout(runtime)
    finally:
        runtime.close()


def test_enqueue_to_a_hung_redis_raises_unavailable_within_the_timeout(own_redis):
    """A Redis that accepts connections and never answers (SIGSTOP) times out too."""
    runtime = _runtime(own_redis.url)
    try:
        runtime.producer.enqueue(MESSAGE)
        assert own_redis.pid is not None
        os.kill(own_redis.pid, signal.SIGSTOP)
        _refused_within_the_timeout(runtime)
        fresh = _runtime(own_redis.url)  # a new connection to the frozen server
        try:
            _refused_within_the_timeout(fresh)
        finally:
            fresh.close()
    finally:
        os.kill(own_redis.pid, signal.SIGCONT)
        runtime.close()


def _enqueue_command(url: str, to: str) -> tuple[int, float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGWORKER_")}
    env |= {"MSGWORKER_BROKER_URL": url, "MSGWORKER_REDIS_TIMEOUT_S": str(TIMEOUT_S)}
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 - our console script
        [str(BIN / "msgworker"), "enqueue", "--to", to, "--text", "hello"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=BIN,  # no .env here
    )
    return done.returncode, time.monotonic() - started, done.stderr


@pytest.mark.processes
def test_the_enqueue_command_exits_69_within_the_timeout_when_redis_hangs(own_redis):
    """`msgworker enqueue` against a frozen Redis: exit 69 and one line, as fast as the API."""
    # The same command refused before it reaches Redis: the start-up time of the command.
    code, start_up_s, _ = _enqueue_command(own_redis.url, to="1")
    assert code == 2
    assert own_redis.pid is not None
    os.kill(own_redis.pid, signal.SIGSTOP)
    try:
        code, elapsed, stderr = _enqueue_command(own_redis.url, to=MESSAGE["to"])
    finally:
        os.kill(own_redis.pid, signal.SIGCONT)
    assert code == 69, stderr
    assert "cannot reach Redis" in stderr
    assert elapsed < start_up_s + TIMEOUT_S + 1, (elapsed, start_up_s)


def test_enqueue_after_a_redis_restart_succeeds_on_a_fresh_connection(own_redis):
    """Failing fast does not mean failing on a pooled connection Redis closed meanwhile."""
    runtime = _runtime(own_redis.url)
    try:
        runtime.producer.enqueue(MESSAGE)
        own_redis.restart()
        assert runtime.producer.enqueue(MESSAGE)
    finally:
        runtime.close()


def _nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(depth):
        value = {"x": value}
    return value


def _template(components: list[dict[str, object]]) -> dict[str, object]:
    return {
        "to": "905321234567",
        "type": "template",
        "template": {"name": "order_update", "language": {"code": "tr"}, "components": components},
    }


def _body(*texts: str) -> dict[str, object]:
    return {"type": "body", "parameters": [{"type": "text", "text": t} for t in texts]}


def _interactive(action: dict[str, object], body: str = "ok?") -> dict[str, object]:
    return {
        "to": "905321234567",
        "type": "interactive",
        "interactive": {"type": "button", "body": {"text": body}, "action": action},
    }


def _context(**values: object) -> dict[str, object]:
    return {**MESSAGE, "context": values}


HOSTILE = {
    "a million template components": (
        _template([_body("1")] * 1_000_000),
        {},
        "message.template.components",
    ),
    "a 50,000,000-character parameter": (
        _template([_body("x" * 50_000_000)]),
        {},
        "message.template.components.0.parameters.0.text",
    ),
    "5,000-deep nesting": (_context(n=_nested(5_000)), {}, "message.context.n.x.x"),
    "17 template components": (_template([_body("1")] * 17), {}, "message.template.components"),
    "a body over 64 KiB": (
        _template([_body("x" * 30_000, "y" * 30_000, "z" * 10_000)]),
        {},
        "message",
    ),
    "3,000 values": (
        _context(n=[{f"k{i}": i for i in range(30)} for i in range(99)]),
        {},
        "message",
    ),
    "4 reply buttons": (
        _interactive({"buttons": [{"type": "reply"}] * 4}),
        {},
        "message.interactive.action",
    ),
    "11 list rows": (
        _interactive({"sections": [{"rows": [{"id": "r"}] * 6}, {"rows": [{"id": "s"}] * 5}]}),
        {},
        "message.interactive.action",
    ),
    "an interactive body over 1024": (
        _interactive({"buttons": []}, "b" * 1025),
        {},
        "message.interactive.body",
    ),
    "a 2049-character link": (
        {
            "to": "905321234567",
            "type": "image",
            "image": {"link": "https://x.example/" + "a" * 2031},
        },
        {},
        "message.image.link",
    ),
    "NaN in context": (_context(n=float("nan")), {}, "message.context.n"),
    "an integer beyond 2**53": (_context(n=2**70), {}, "message.context.n"),
    "ttl_s infinite": (MESSAGE, {"ttl_s": float("inf")}, "ttl_s"),
    "ttl_s NaN": (MESSAGE, {"ttl_s": float("nan")}, "ttl_s"),
    "ttl_s of 31 days": (MESSAGE, {"ttl_s": 31 * 86_400}, "ttl_s"),
    "send_at in year 9999": (MESSAGE, {"send_at": datetime(9999, 12, 31, tzinfo=UTC)}, "send_at"),
    "send_at in year 1, before UTC": (
        MESSAGE,
        {"send_at": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=-14)))},
        "send_at",
    ),
    "expires_at 40 days ahead": (
        MESSAGE,
        {"expires_at": datetime.now(UTC) + timedelta(days=40)},
        "expires_at",
    ),
}


@pytest.mark.parametrize(("message", "options", "field"), HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_payload_is_refused_naming_the_field_and_nothing_is_enqueued(
    redis_url, redis_client, message, options, field
):
    """Oversized, overdeep, overlong or non-finite input: InvalidMessage naming the field, fast,
    nothing written to Redis, both through enqueue and enqueue_many."""
    runtime = _runtime(redis_url)
    try:
        started = time.monotonic()
        with pytest.raises(InvalidMessage) as refused:
            runtime.producer.enqueue(message, **options)
        assert time.monotonic() - started < 5
        assert [p.field for p in refused.value.problems if p.field.startswith(field)], (
            refused.value.problems
        )
        good = {"message": MESSAGE}
        with pytest.raises(InvalidMessage) as refused_many:
            runtime.producer.enqueue_many([good, {"message": message, **options}])
        assert [p.field for p in refused_many.value.problems if p.field.startswith("[1]." + field)]
        assert redis_client.dbsize() == 0
    finally:
        runtime.close()


def test_the_largest_payloads_within_every_limit_are_accepted(redis_url):
    """The limits leave room for what the Cloud API takes: a 32,768-character lone body
    parameter, 3 buttons, 10 list rows, a 2048-character link, a 30-day ttl_s."""
    runtime = _runtime(redis_url)
    try:
        payloads = [
            _template([_body("x" * 32_768)]),
            _template([_body("1")] * 16),
            _interactive({"buttons": [{"type": "reply"}] * 3}, "b" * 1024),
            _interactive({"sections": [{"rows": [{"id": "r"}] * 5}, {"rows": [{"id": "s"}] * 5}]}),
            {
                "to": "905321234567",
                "type": "image",
                "image": {"link": "https://x.example/" + "a" * 2030},
            },
        ]
        assert all(runtime.producer.enqueue(p) for p in payloads)
        assert runtime.producer.enqueue(MESSAGE, ttl_s=30 * 86_400)
    finally:
        runtime.close()


@pytest.mark.processes
def test_the_enqueue_command_refuses_a_line_nested_too_deeply(redis_url, tmp_path):
    """`enqueue --file`: a line nested 100, 5,000 or 100,000 deep is a bad line, not a traceback."""
    lines = [
        json.dumps(MESSAGE),
        json.dumps(_context(n=_nested(100))),
        json.dumps(_context(n="DEEP")).replace('"DEEP"', '{"x": ' * 5_000 + "{}" + "}" * 5_000),
        "[" * 100_000 + "]" * 100_000,
    ]
    path = tmp_path / "jobs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGWORKER_")}
    env["MSGWORKER_BROKER_URL"] = redis_url
    done = subprocess.run(  # noqa: S603 - our console script
        [str(BIN / "msgworker"), "enqueue", "--file", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=BIN,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "line 2: message.context.n.x" in done.stderr
    assert "nested deeper than" in done.stderr
    assert "line 3: nested too deeply" in done.stderr
    assert "line 4: nested too deeply" in done.stderr
    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    client.close()


def test_a_job_for_an_unknown_account_is_refused_naming_the_known_ones(redis_url, redis_client):
    """account names a field; the refusal lists the accounts the deployment knows; nothing is
    written, one by one or in a batch."""
    runtime = _runtime(redis_url)
    try:
        with pytest.raises(InvalidMessage) as refused:
            runtime.producer.enqueue(MESSAGE, account="typo")
        [problem] = refused.value.problems
        assert problem.field == "account"
        assert "'typo'" in problem.message
        assert "known: default" in problem.message
        with pytest.raises(InvalidMessage) as refused_many:
            runtime.producer.enqueue_many([MESSAGE, {"message": MESSAGE, "account": "typo"}])
        assert [p.field for p in refused_many.value.problems] == ["[1].account"]
        assert redis_client.dbsize() == 0
    finally:
        runtime.close()


def test_the_producer_takes_the_accounts_it_is_given(redis_url):
    """The known accounts are an argument: a producer built for two accepts both, not a third."""
    client = connect_redis_fail_fast(redis_url, timeout_s=TIMEOUT_S)
    producer = Producer(
        JobStore(client, Keys("msgworker:")),
        accounts=frozenset({"default", "shop"}),
        redis_timeout_s=TIMEOUT_S,
    )
    try:
        assert producer.enqueue(MESSAGE, account="shop")
        with pytest.raises(InvalidMessage, match=r"known: default, shop"):
            producer.enqueue(MESSAGE, account="other")
    finally:
        client.close()


@pytest.mark.processes
def test_the_enqueue_command_refuses_an_unknown_account(redis_url):
    """`msgworker enqueue --account typo`: exit 2 naming the known accounts, nothing written."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGWORKER_")}
    env["MSGWORKER_BROKER_URL"] = redis_url
    done = subprocess.run(  # noqa: S603 - our console script
        [
            str(BIN / "msgworker"),
            "enqueue",
            "--to",
            MESSAGE["to"],
            "--text",
            "hi",
            "--account",
            "typo",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=BIN,
    )
    assert done.returncode == 2, done.stderr
    assert "account: unknown account 'typo' (known: default)" in done.stderr
    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    client.close()
