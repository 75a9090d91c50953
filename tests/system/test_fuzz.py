"""Bad input at every door, fuzzed: each gets a clear error, nothing is half-written, no worker dies.

Doors: the producer API, the CLI's arguments and JSON-lines files, the environment, the routing
table, dead letters from other versions, the Gateway's answers on a real socket, and the broker
queue a worker consumes. ``FUZZ_EXAMPLES`` scales the examples (the soak raises it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import socket
import threading
import time
from datetime import UTC, datetime

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kombu import Connection, Exchange, Producer

import worker.service.app
import worker.service.runtime
from tests.support.cluster import API_KEY, Sandbox, start_worker, worker_env
from tests.support.processes import wait_for
from worker.cli.main import main
from worker.errors import ConfigError, GatewayError, InvalidMessage
from worker.outcome import Sent
from worker.sandbox.server import RunningSandbox, SandboxConfig
from worker.send.gateway import GatewayClient
from worker.send.routing import RoutingTable, default_routing_path, load_routing_table
from worker.send.transport import PooledHTTP
from worker.service.runtime import Runtime
from worker.service.tasks import TASK_NAME
from worker.settings import Settings, get_settings
from worker.store.deadletters import DeadLetter
from worker.store.states import JobState

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
EXIT_CODES = {0, 1, 2, 69, 78}

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def valid_message(n: int) -> dict:
    return {"to": "905321234567", "type": "text", "text": {"body": f"fuzz {n}"}}


# Near-valid messages: the right keys with any values, so validation goes deep.
message_like = st.fixed_dictionaries(
    {},
    optional={
        "to": st.sampled_from(["905321234567", "+90 532 123 45 67", "0532", ""]) | json_scalars,
        "type": st.sampled_from(["text", "image", "template", "interactive", "fax"]) | json_scalars,
        "text": st.fixed_dictionaries(
            {}, optional={"body": json_scalars, "preview_url": json_scalars}
        )
        | json_values,
        "template": st.fixed_dictionaries(
            {},
            optional={
                "name": st.sampled_from(["otp", "Bad Name"]) | json_scalars,
                "language": st.fixed_dictionaries(
                    {}, optional={"code": st.sampled_from(["en", "tr_TR", "x"])}
                ),
                "components": json_values,
            },
        ),
        "image": st.fixed_dictionaries(
            {},
            optional={
                "link": st.sampled_from(["https://x.example/a.png", "ftp://x"]),
                "id": json_scalars,
            },
        ),
        "context": json_values,
        "extra": json_values,
    },
)
times = st.datetimes(
    min_value=datetime(1970, 1, 2),  # noqa: DTZ001 - hypothesis takes naive bounds
    max_value=datetime(9000, 1, 1),  # noqa: DTZ001
    timezones=st.none() | st.just(UTC),
) | st.text(max_size=30)
envelopes = st.fixed_dictionaries(
    {"message": message_like | json_values},
    optional={
        "idempotency_key": st.text(max_size=20) | json_scalars,
        "send_at": times | json_scalars,
        "expires_at": times | json_scalars,
        "ttl_s": st.floats() | st.integers() | json_scalars,
        "account": st.sampled_from(["default", "shop-2", "bad account", ""]) | json_scalars,
        "surprise": json_values,
    },
)
items = st.lists(message_like | envelopes | json_values, min_size=1, max_size=5)


@pytest.fixture(scope="module")
def runtime(redis_server):
    """A producer on the session's private Redis (flushed once for the module)."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    runtime = Runtime(Settings(broker_url=redis_server.url, _env_file=None))
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def cli_env(redis_server):
    """The CLI run in-process against the private Redis: environment set, caches reset."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("MSGWORKER_")}
    for key in saved:
        del os.environ[key]
    os.environ["MSGWORKER_BROKER_URL"] = redis_server.url
    worker.service.runtime._runtime = None
    worker.service.app._app = None
    yield redis_server.url
    del os.environ["MSGWORKER_BROKER_URL"]
    os.environ.update(saved)
    worker.service.runtime._runtime = None
    worker.service.app._app = None


def cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    return code, out.getvalue(), err.getvalue()


# ---------------------------------------------------------------- the producer


@FUZZ
@given(batch=items)
def test_enqueue_many_gives_ids_or_a_refusal_naming_fields_and_writes_nothing_then(runtime, batch):
    """Any JSON-ish batch: ids for all, or InvalidMessage naming [i].field and Redis untouched."""
    before = runtime.redis.dbsize()
    refusal = None
    try:
        ids = runtime.producer.enqueue_many(batch)
    except InvalidMessage as exc:
        refusal = exc
    if refusal is not None:
        assert refusal.problems
        for problem in refusal.problems:
            index, _, field = problem.field.partition("].")
            assert index.startswith("[")
            assert 0 <= int(index[1:]) < len(batch)
            assert field
            assert problem.message
        assert runtime.redis.dbsize() == before
        return
    assert len(ids) == len(batch)
    for job_id in ids:
        job = runtime.jobs.get(job_id)
        assert job is not None
        # What was accepted can be posted: strict JSON, nothing silently changed to null.
        json.dumps(job.message, allow_nan=False)
        assert job.expires_at is None or not math.isnan(job.expires_at)


def test_nan_in_a_payload_is_refused_not_sent_as_null(runtime):
    """A NaN (not JSON) in a payload is refused naming the field, not silently turned into null."""
    message = {
        "to": "905321234567",
        "type": "template",
        "template": {"name": "otp", "language": {"code": "en"}, "components": [{"n": math.nan}]},
    }
    before = runtime.redis.dbsize()
    with pytest.raises(InvalidMessage) as caught:
        runtime.producer.enqueue_many([message])
    assert caught.value.problems[0].field.startswith("[0].message")
    assert runtime.redis.dbsize() == before


# ---------------------------------------------------------------- the command line

WORDS = st.sampled_from(
    [
        "--json",
        "--code",
        "BILL_001",
        "--id",
        "--all",
        "--rate",
        "0",
        "-1",
        "nan",
        "inf",
        "5",
        "--limit",
        "--since",
        "yesterday",
        "2026-01-01T00:00:00+00:00",
        "--dry-run",
        "--yes",
        "--account",
        "shop",
        "--reason",
        "--to",
        "905321234567",
        "--text",
        "hi",
        "--template",
        "otp",
        "--lang",
        "en",
        "--idempotency-key",
        "k",
        "--send-at",
        "--expires-at",
        "--ttl",
        "--file",
        "/nonexistent/file.jsonl",
        "-",
        "--help",
        "x" * 300,
        "",
    ]
)
COMMANDS = st.sampled_from(
    [
        ["enqueue"],
        ["job"],
        ["status"],
        ["halt"],
        ["resume"],
        ["dlq"],
        ["dlq", "list"],
        ["dlq", "show"],
        ["dlq", "export"],
        ["dlq", "replay"],
        ["dlq", "purge"],
        ["bogus"],
        [],
    ]
)


@FUZZ
@given(command=COMMANDS, words=st.lists(WORDS | st.text(max_size=12), max_size=6))
def test_cli_arguments_end_in_an_exit_code_never_a_traceback(cli_env, command, words):
    """Random arguments to every non-server command: exit 0, 1, 2, 69 or 78, never an exception."""
    args = [*command, *words]
    try:
        code, _, err = cli(args)
    except Exception as exc:  # noqa: BLE001 - the failure names the arguments
        pytest.fail(f"msgworker {args!r} raised {exc!r}")
    assert code in EXIT_CODES, (args, code, err)


GOOD_LINE = st.integers(0, 10**6).map(lambda n: json.dumps(valid_message(n)))
BAD_LINE = st.one_of(
    st.sampled_from(
        ['{"to": ', "not json", "[1, 2", '{"to": "905321234567"}', "5", '"text"', "null"]
    ),
    st.text(
        alphabet=st.characters(
            exclude_characters="\r\n\x85\u2028\u2029", exclude_categories=("Cs",)
        ),
        max_size=20,
    ).map(lambda t: "{" + t),
    st.builds(lambda n: json.dumps({"message": valid_message(n), "ttl_s": -1}), st.integers(0, 9)),
)


@FUZZ
@given(lines=st.lists(st.tuples(st.booleans(), GOOD_LINE, BAD_LINE), min_size=1, max_size=8))
def test_jsonl_file_goes_in_whole_or_not_at_all_naming_exactly_the_bad_lines(
    cli_env, tmp_path, lines
):
    """Any mix of good and broken lines: all enqueued, or none with exactly the bad line numbers."""
    chosen = [good if ok else bad for ok, good, bad in lines]
    bad_numbers = {n for n, (ok, _, _) in enumerate(lines, start=1) if not ok}
    path = tmp_path / f"in-{time.monotonic_ns()}.jsonl"
    path.write_text("\n".join(chosen) + "\n", encoding="utf-8")
    client = worker.service.runtime.current_runtime().redis
    before = client.dbsize()
    code, out, err = cli(["enqueue", "--file", str(path)])
    if bad_numbers:
        assert code == 2, err
        reported = {
            int(line.split(":")[0].split()[1])
            for line in err.splitlines()
            if line.startswith("  line ")
        }
        assert reported == bad_numbers, err
        assert out == ""
        assert client.dbsize() == before
    else:
        assert code == 0, err
        assert len(out.split()) == len(chosen)


def test_missing_jsonl_file_is_an_error_line_not_a_traceback(cli_env):
    """`enqueue --file` naming no file says so with exit 2."""
    code, _, err = cli(["enqueue", "--file", "/nonexistent/jobs.jsonl"])
    assert code == 2
    assert "/nonexistent/jobs.jsonl" in err


def test_unreadable_since_is_a_usage_error_not_a_traceback(cli_env):
    """`dlq list --since yesterday` is refused as a usage error naming the value."""
    code, _, err = cli(["dlq", "list", "--since", "yesterday"])
    assert code == 2
    assert "yesterday" in err


# ---------------------------------------------------------------- settings and the routing table

SETTING_NAMES = sorted(Settings.model_fields)
env_text = st.text(
    alphabet=st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=40
)


@FUZZ
@given(
    values=st.dictionaries(
        st.sampled_from(SETTING_NAMES),
        env_text
        | st.sampled_from(["0", "-1", "1e9", "true", "redis://x", "http://x", "json", "DEBUG"]),
        min_size=1,
        max_size=4,
    )
)
def test_any_environment_gives_settings_or_one_line_naming_the_variable(values):
    """Random MSGWORKER_* values: Settings, or ConfigError in one line naming a variable set."""
    names = {f"MSGWORKER_{name.upper()}" for name in values}
    saved = {k: v for k, v in os.environ.items() if k.startswith("MSGWORKER_")}
    try:
        for key in saved:
            del os.environ[key]
        for name, value in values.items():
            os.environ[f"MSGWORKER_{name.upper()}"] = value
        try:
            get_settings(_env_file=None)
        except ConfigError as exc:
            message = str(exc)
            assert "\n" not in message
            assert message.startswith("invalid settings: MSGWORKER_"), message
            assert any(name.removeprefix("MSGWORKER_") in message for name in names), message
    finally:
        for name in names:
            os.environ.pop(name, None)
        os.environ.update(saved)


TOML_PIECES = st.sampled_from(
    [
        "[codes]",
        "[groups]",
        "[statuses]",
        "[transport]",
        "[default]",
        "[codes.AUTH_001]",
        'AUTH_001 = { action = "halt" }',
        'GW_001 = { action = "park", reason = "permanent" }',
        'x = { action = "explode" }',
        '"5xx" = { action = "backoff" }',
        '"6xx" = { action = "park" }',
        'ambiguous = { action = "park", reason = "ambiguous" }',
        'TIMEOUT = { action = "halt", reason = "billing" }',
        'action = "park"',
        "reason = 5",
        "default = 1",
        "= broken",
        "[[codes]]",
        "a = [1, [2, [3]]]",
        'b = """',
        "c = 1979-05-27T07:32:00Z",
        "d = inf",
        "e = { f = { g = {} } }",
        "",
    ]
)


@FUZZ
@given(
    pieces=st.lists(TOML_PIECES | env_text, max_size=10),
    base=st.booleans(),
)
def test_any_routing_file_gives_a_table_or_a_config_error(tmp_path, pieces, base):
    """Random TOML-ish text, alone or after the real table: RoutingTable or a ConfigError."""
    text = (default_routing_path().read_text() + "\n" if base else "") + "\n".join(pieces)
    path = tmp_path / f"routing-{time.monotonic_ns()}.toml"
    path.write_text(text, encoding="utf-8")
    outcome: RoutingTable | ConfigError
    try:
        outcome = load_routing_table(path)
    except ConfigError as exc:
        outcome = exc
    if isinstance(outcome, ConfigError):
        assert str(outcome).startswith(f"routing table {path}")
    else:
        assert isinstance(outcome, RoutingTable)


# ---------------------------------------------------------------- dead letters of other versions

RECORD = {
    "id": "j1",
    "idempotency_key": "j1",
    "account": "default",
    "message": valid_message(1),
    "code": "BILL_001",
    "group": "PAYMENT_REQUIRED",
    "status": 402,
    "description": "",
    "params": {},
    "reason": "billing",
    "attempts": 1,
    "enqueued_at": 1.0,
    "parked_at": 2.0,
    "expires_at": None,
    "wamid": None,
}


@FUZZ
@given(
    extra=st.dictionaries(
        st.text(min_size=1, max_size=12).filter(lambda k: k not in RECORD), json_values, max_size=5
    )
)
def test_dead_letter_records_ignore_fields_they_do_not_know(extra):
    """A record with any unknown fields reads as the same DeadLetter."""
    # Every field a record has today, so that no generated "unknown" field is a known one.
    assert set(RECORD) == {field.name for field in dataclasses.fields(DeadLetter)}
    assert DeadLetter.from_json(json.dumps({**RECORD, **extra})) == DeadLetter.from_json(
        json.dumps(RECORD)
    )


def test_dlq_commands_read_and_replay_records_with_unknown_fields(cli_env, runtime):
    """dlq list/show/export/replay work on records written by a newer version with more fields."""
    runtime.redis.flushall()
    job_id = runtime.producer.enqueue(valid_message(42))
    record = {
        **RECORD,
        "id": job_id,
        "idempotency_key": job_id,
        "from_the_future": {"x": [1]},
        "v": 9,
    }
    runtime.redis.hset(runtime.keys.job(job_id), mapping={"state": "parked"})
    runtime.redis.zrem(runtime.keys.due("default", "normal"), f"{job_id}|1")
    runtime.redis.set(runtime.keys.dead_letter(job_id), json.dumps(record))
    runtime.redis.zadd(runtime.keys.dead_letter_index, {job_id: 2.0})
    runtime.redis.hincrby(runtime.keys.dead_letter_counts, "BILL_001", 1)
    code, out, err = cli(["dlq", "list", "--json"])
    assert code == 0, err
    assert json.loads(out)["id"] == job_id
    assert "from_the_future" not in out
    code, out, err = cli(["dlq", "show", job_id, "--json"])
    assert code == 0, err
    code, out, err = cli(["dlq", "export"])
    assert code == 0, err
    code, out, err = cli(["dlq", "replay", "--id", job_id, "--json"])
    assert code == 0, err
    assert json.loads(out)["replayed"] == 1
    assert runtime.jobs.get(job_id).state in {JobState.QUEUED, JobState.SCHEDULED}


# ---------------------------------------------------------------- the Gateway's answers


class RawServer:
    """A socket server answering each request with the bytes it is given, then closing."""

    def __init__(self) -> None:
        self.answer = b""
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                request = b""
                with contextlib.suppress(OSError):
                    while b"\r\n\r\n" not in request:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        request += chunk
                    head, _, body = request.partition(b"\r\n\r\n")
                    length = next(
                        (
                            int(line.split(b":")[1])
                            for line in head.split(b"\r\n")
                            if line.lower().startswith(b"content-length:")
                        ),
                        0,
                    )
                    while len(body) < length:
                        body += conn.recv(65536)
                    auth = next(
                        (
                            line
                            for line in head.split(b"\r\n")
                            if line.lower().startswith(b"authorization:")
                        ),
                        b"",
                    )
                    conn.sendall(self.answer.replace(b"{AUTH}", auth))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


@pytest.fixture(scope="module")
def raw_server():
    server = RawServer()
    yield server
    server.close()


header_names = st.sampled_from(
    [
        b"Content-Type",
        b"Content-Length",
        b"Transfer-Encoding",
        b"Content-Encoding",
        b"Retry-After",
        b"X-RateLimit-sec-Limit",
        b"X-RateLimit-sec-Remaining",
        b"X-RateLimit-min-Remaining",
        b"X-Echo",
    ]
) | st.binary(min_size=1, max_size=10)
header_values = st.sampled_from(
    [
        b"application/json",
        b"text/html",
        b"chunked",
        b"gzip",
        b"br",
        b"5",
        b"-1",
        b"99999999999999999999",
        b"1s",
        b"{AUTH}",
        b"\xff\xfe",
        b"",
    ]
) | st.binary(max_size=20)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.sampled_from(
        [
            b'{"isSuccess": true, "data": {"messages": [{"id": "wamid.X"}]}}',
            b'{"isSuccess": false, "errors": {"code": "AUTH_001", "description": "bad {AUTH}"}}',
            b'{"isSuccess": false, "errors": {"code": "RATE_001", "params": {"retry_after": "1e999s"}}}',
            b'{"errors": [{"code": "GW_001"}, 5]}',
            b"<html>502</html>",
            b"",
        ]
    ),
)
answers = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda version, status, reason, headers, body, length: (
            version
            + b" "
            + status
            + b" "
            + reason
            + b"\r\n"
            + b"".join(name + b": " + value + b"\r\n" for name, value in headers)
            + (
                b"Content-Length: " + str(len(body) + length).encode() + b"\r\n"
                if length is not None
                else b""
            )
            + b"\r\n"
            + body
        ),
        st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b"HTTP/1.1x", b""]),
        st.sampled_from(
            [
                b"200",
                b"201",
                b"204",
                b"301",
                b"400",
                b"401",
                b"402",
                b"429",
                b"500",
                b"502",
                b"503",
                b"599",
                b"999",
                b"abc",
                b"1",
            ]
        ),
        st.sampled_from([b"OK", b"", b"\xff"]),
        st.lists(st.tuples(header_names, header_values), max_size=4),
        bodies,
        st.none() | st.integers(-3, 3),
    ),
)


@FUZZ
@given(answer=answers)
def test_any_bytes_from_the_gateway_give_sent_or_a_gateway_error(raw_server, answer):
    """Whatever bytes come back on a real socket: Sent, or a GatewayError without the key."""
    raw_server.answer = answer
    http = PooledHTTP(timeout_s=1.0)
    client = GatewayClient(http, base_url=raw_server.url, api_key=API_KEY)
    result: Sent | GatewayError
    try:
        result = client.send(valid_message(1))
    except GatewayError as error:
        result = error
    finally:
        http.close()
    if isinstance(result, GatewayError):
        assert API_KEY not in str(result)
        assert API_KEY not in result.description
        assert API_KEY not in json.dumps(result.params, default=str)
    else:
        assert isinstance(result, Sent)
        assert result.wamid


# ---------------------------------------------------------------- the broker queue


def garbage_messages(broker_url: str, queue: str) -> int:
    """Malformed task messages and garbage (id, gen) pairs straight onto the worker's queue."""
    pairs = [
        ("no-such-job", 1),
        (None, None),
        ([], {}),
        ("x" * 5000, -1),
        (1.5, "a"),
        ("a|b", "1|2"),
        ("", 0),
        ("\u2603", 2**70),
    ]
    exchange = Exchange("", type="direct")
    with Connection(broker_url) as connection:
        producer = Producer(
            connection.channel(), exchange=exchange, routing_key=queue, serializer="json"
        )
        sent = 0
        for args in [*[(a, b) for a, b in pairs], (), ("only-id",), ("a", 1, 2)]:
            producer.publish(
                [list(args), {}, {}],
                headers={"task": TASK_NAME, "id": f"garbage-{sent}", "lang": "py"},
                serializer="json",
            )
            sent += 1
        # Not Celery messages at all: no task header, unknown task, a body that is not JSON.
        producer.publish({"hello": "world"}, serializer="json")
        producer.publish([[], {}, {}], headers={"task": "not.a.task", "id": "unknown"})
        producer.publish(
            b"\xff\xfe not json", content_type="application/json", content_encoding="binary"
        )
        producer.publish(b"plain text", content_type="text/plain", content_encoding="binary")
        return sent + 4


@pytest.mark.processes
def test_a_worker_survives_garbage_on_its_queue_and_keeps_delivering(redis_url, tmp_path):
    """Garbage (id, gen) pairs and malformed messages on the queue: the worker lives and sends."""
    with RunningSandbox(SandboxConfig(api_keys=(API_KEY,))) as running:
        sandbox = Sandbox(running.url)
        env = worker_env(redis_url, running.url)
        process = start_worker(env, tmp_path / "w.log", concurrency=4)
        runtime = Runtime(Settings(broker_url=redis_url, api_base_url=running.url, _env_file=None))
        try:
            pushed = garbage_messages(redis_url, runtime.settings.queue)
            ids = runtime.producer.enqueue_many([valid_message(n) for n in range(20)])
            wait_for(
                lambda: all(runtime.jobs.get(i).state is JobState.SENT for i in ids),
                timeout_s=30,
                what="real jobs sent after the garbage",
            )
            assert pushed >= 10
            assert process.process.poll() is None
            assert sandbox.stats()["accepted"] == 20
            assert runtime.redis.llen(runtime.settings.queue) == 0  # every garbage message consumed
        finally:
            runtime.close()
            process.stop()
            sandbox.close()
        assert process.process.returncode is not None
        assert "Unrecoverable error" not in process.log()


def test_a_file_that_is_not_utf8_is_an_error_line_not_a_traceback(cli_env, tmp_path):
    """`enqueue --file` on bytes that are not UTF-8 says so with exit 2 and enqueues nothing."""
    path = tmp_path / "binary.jsonl"
    path.write_bytes(b'{"to": "\xff\xfe"}\n')
    code, out, err = cli(["enqueue", "--file", str(path)])
    assert (code, out) == (2, "")
    assert "not UTF-8" in err
