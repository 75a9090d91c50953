"""Rows of the hostile-input report not reproduced elsewhere, end to end: the production
delivery path against a hostile Gateway on a real socket, real Redis, the real CLI.

Row 2: a drip-fed answer never outlives the claim, so no second call starts while the first is
in flight. Row 7: a key at the end of a long description and a Bearer prefix never reach a
dead letter, nor what `dlq show`, `dlq export` and `job` print. Row 9: a code the Gateway
invents is kept in the dead letter only as a bounded identifier without any piece of the key.
Round two, row 8: a key rotated out of a running worker stays redacted; row 14: a gzip bomb
costs the delivery a few MB and parks its job as an ambiguous 2xx.
"""

from __future__ import annotations

import json
import re
import threading
import time
import tracemalloc
from dataclasses import replace

import pytest
import redis

from tests.cli.test_cli import run
from tests.support.cluster import API_KEY, start_worker, worker_env
from tests.support.hostile import HostileGateway, error, gzip_bomb, http, success
from tests.support.processes import wait_for
from worker.outcome import Result
from worker.service.runtime import Runtime, claim_lease_s
from worker.settings import Settings
from worker.store.states import JobState

pytestmark = pytest.mark.processes  # every test here runs real child processes

HTTP_TIMEOUT_S = 1.0
IDENTIFIER = re.compile(r"^[A-Z][A-Z0-9_]{0,39}$")
KEY_PIECES = {API_KEY[i : i + 8].lower() for i in range(len(API_KEY) - 7)}


def leaks(text: str) -> list[str]:
    lowered = text.lower()
    return [piece for piece in KEY_PIECES if piece in lowered]


def escaped(text: str) -> str:
    return "".join(f"\\u{ord(c):04x}" if i % 4 == 3 else c for i, c in enumerate(text))


@pytest.fixture
def gateway():
    server = HostileGateway()
    yield server
    server.stop()


@pytest.fixture
def runtime(redis_url, gateway):
    runtime = Runtime(
        Settings(
            broker_url=redis_url,
            api_base_url=gateway.url,
            api_key=API_KEY,
            http_timeout_s=HTTP_TIMEOUT_S,
            _env_file=None,
        )
    )
    yield runtime
    runtime.close()


def enqueue(runtime: Runtime, body: str = "row") -> str:
    return runtime.producer.enqueue({"to": "905321234567", "type": "text", "text": {"body": body}})


def deliver(runtime: Runtime, job_id: str) -> Result:
    job = runtime.jobs.get(job_id)
    assert job is not None
    return runtime.delivery.deliver(job.id, job.gen)


def test_row_2_a_drip_fed_answer_ends_at_the_deadline_and_no_second_call_starts(runtime, gateway):
    """A 200 fed a byte at a time for longer than the deadline: the call ends at HTTP_TIMEOUT_S,
    well inside the claim; a second dispatch meanwhile is dropped without calling."""
    gateway.play(replace(success("wamid.SLOW"), drip_s=0.05, chunk=1, accepts=False))
    job_id = enqueue(runtime)
    job = runtime.jobs.get(job_id)
    results: list[Result] = []
    started = time.monotonic()
    first = threading.Thread(target=lambda: results.append(deliver(runtime, job_id)))
    first.start()
    wait_for(lambda: gateway.requests, what="the first call")
    second = [runtime.delivery.deliver(job.id, job.gen) for _ in range(3)]
    first.join(10)
    took = time.monotonic() - started
    assert second == [Result.DROPPED] * 3
    assert len(gateway.requests) == 1
    assert took < HTTP_TIMEOUT_S + 1.0 < claim_lease_s(HTTP_TIMEOUT_S)
    assert results == [Result.RETRIED]  # an answer lost: retried, as the routing table says
    history = runtime.jobs.get(job_id).history
    assert "WORKER_LOST" not in json.dumps(history)


def test_row_7_no_piece_of_the_key_reaches_a_dead_letter_or_the_cli(runtime, gateway, redis_url):
    """A 400 whose description is 290 x and the key, params a Bearer prefix: the dead letter and
    `dlq show`, `dlq show --json`, `dlq export`, `job --json` hold no 8 characters of the key."""
    errors = {
        "code": "GW_001",
        "description": "x" * 290 + API_KEY,
        "params": {"k": f"Bearer {API_KEY[:20]}", "upper": API_KEY.upper()},
    }
    gateway.play(error(400, errors))
    job_id = enqueue(runtime)
    assert deliver(runtime, job_id) is Result.PARKED
    record = runtime.dead_letters.get(job_id)
    assert record is not None
    assert not leaks(json.dumps(record.to_dict()))
    for args in (
        ("dlq", "show", job_id),
        ("dlq", "show", job_id, "--json"),
        ("dlq", "export"),
        ("dlq", "list", "--json"),
        ("job", job_id, "--json"),
    ):
        code, out, err = run(redis_url, *args)
        assert code == 0, err
        assert not leaks(out + err), args


@pytest.mark.parametrize(
    "code",
    [
        "Z" + "Q7" * 15,  # invented, a well-formed identifier: kept (the label is bounded)
        "z" * 60,  # too long
        "<img src=x onerror=alert(1)>",
        "RATE\n001",
        API_KEY.upper(),
        escaped(API_KEY),
        escaped(API_KEY.upper()),
    ],
)
def test_row_9_an_invented_code_is_a_bounded_identifier_without_the_key(runtime, gateway, code):
    """Whatever code the Gateway invents, the dead letter's code (and group) is an identifier of
    at most 40 characters holding no piece of the key; else the HTTP status names it."""
    body = '{"errors": {"code": "' + code.replace("\n", "\\n") + '", "group": "' + code + '"}}'
    gateway.play(http(400, body.replace("\n", "\\n")))
    job_id = enqueue(runtime)
    assert deliver(runtime, job_id) is Result.PARKED
    record = runtime.dead_letters.get(job_id)
    assert record is not None
    assert IDENTIFIER.match(record.code), record.code
    assert not leaks(record.code)
    assert record.group is None or (IDENTIFIER.match(record.group) and not leaks(record.group))
    job = runtime.jobs.get(job_id)
    assert job.state is JobState.PARKED
    assert job.last_code == record.code


ROTATED = ("sk_first_Qw7e9r1t3y5u", "sk_second_Zx2c4v6b8n0m", "sk_third_Lk1j3h5g7f9d")


def pieces(secret: str) -> set[str]:
    return {secret[i : i + 8].lower() for i in range(len(secret) - 7)}


def redis_text(client) -> str:
    """Every value in Redis, as text."""
    values = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == "string":
            values.append(client.get(key))
        elif kind == "hash":
            values.append(json.dumps(client.hgetall(key)))
        elif kind == "list":
            values += client.lrange(key, 0, -1)
        elif kind == "zset":
            values += client.zrange(key, 0, -1)
        elif kind == "set":
            values += client.smembers(key)
    return "\n".join(values)


def test_round_2_row_8_a_key_rotated_out_stays_redacted_in_dead_letters_and_logs(
    redis_url, gateway, tmp_path
):
    """b.key rotated twice under a running worker: answers quoting the first two keys (and a
    piece of each) leave no 8 characters of either in Redis (the dead letters, the halt) nor in
    the worker's log."""
    first, second, third = ROTATED
    key_file = tmp_path / "b.key"
    key_file.write_text(first)
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(f'[accounts.b]\napi_key_file = "{key_file}"\nsandbox = false\n')
    env = worker_env(redis_url, gateway.url, accounts_file=str(accounts), sandbox="false")
    worker = start_worker(env, tmp_path / "worker.log", concurrency=2)
    runtime = Runtime(Settings(broker_url=redis_url, accounts_file=accounts, _env_file=None))
    body = {"to": "905321234567", "type": "text", "text": {"body": "rotated"}}

    def send_until_used(key: str) -> None:
        """Send one job at a time until a call carries ``key`` (read again within a second)."""

        def used() -> bool:
            job_id = runtime.producer.enqueue(body, account="b")
            settled = {JobState.SENT, JobState.PARKED}
            wait_for(lambda: runtime.jobs.get(job_id).state in settled, what="a call")
            return f"Bearer {key}".encode() in gateway.heads[-1]

        wait_for(used, timeout_s=20, what=f"a call with {key[:9]}")

    quoted = f"revoked {first} and {second}; {first[4:15]} {second[2:12].upper()}"
    try:
        send_until_used(first)
        key_file.write_text(second)
        send_until_used(second)
        key_file.write_text(third)
        gateway.default = error(400, {"code": "GW_001", "description": quoted})
        send_until_used(third)
        assert runtime.dead_letters.counts()["GW_001"] >= 1
        gateway.play(error(401, {"code": "AUTH_001", "description": quoted}))
        runtime.producer.enqueue(body, account="b")
        wait_for(lambda: runtime.switches.halted("b"), what="b halted")
        wait_for(lambda: "account.halted" in worker.log(), what="the halt logged")
    finally:
        worker.stop()
        runtime.close()
    stored, logged = (
        redis_text(redis.Redis.from_url(redis_url, decode_responses=True)),
        worker.log(),
    )
    for secret in (first, second):
        assert not [p for p in pieces(secret) if p in stored.lower()], secret
        assert not [p for p in pieces(secret) if p in logged.lower()], secret


def test_round_2_row_14_a_gzip_bomb_parks_the_job_as_an_ambiguous_2xx(runtime, gateway):
    """A 200 whose gzip body expands to 256 MB: the delivery holds a few MB at most, and the job
    is parked as HTTP_200, reason ambiguous (a 2xx without a readable id: maybe sent)."""
    gateway.play(http(200, gzip_bomb(256), {"Content-Encoding": "gzip"}))
    job_id = enqueue(runtime)
    tracemalloc.start()
    try:
        result = deliver(runtime, job_id)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result is Result.PARKED
    assert peak < 8_000_000
    job = runtime.jobs.get(job_id)
    assert (job.state, job.last_code, job.parked_reason) == (
        JobState.PARKED,
        "HTTP_200",
        "ambiguous",
    )
