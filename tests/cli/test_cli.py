"""The `msgworker` console script against a real Redis: outputs, JSON shapes, exit codes."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time
from importlib.metadata import version

import httpx
import pytest

from tests.support.cluster import BIN, WorkerProcess, run_msgworker, start_worker, worker_env
from tests.support.jobs import park as park_job
from tests.support.messages import text
from tests.support.processes import free_port, wait_for
from worker.store.deadletters import Selection
from worker.store.schedule import count_scheduled
from worker.store.states import JobState

# The CLI is tested as people run it: the msgworker console script, a process of its own.
pytestmark = pytest.mark.processes


def run(broker, *args, stdin=None, cwd=None, **env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGWORKER_")}
    if broker is not None:
        env["MSGWORKER_BROKER_URL"] = broker
    env.update({f"MSGWORKER_{k.upper()}": v for k, v in env_overrides.items()})
    done = run_msgworker(env, *args, stdin=stdin, cwd=cwd)
    return done.returncode, done.stdout, done.stderr


def park(runtime, job_id, **fields):
    """Park as a worker does; the record carries a field from a newer version (readers ignore it)."""
    park_job(runtime, job_id, a_field_from_the_future=True, **fields)


def test_enqueue_text_prints_the_job_id_and_job_shows_the_spec_shape(redis_url):
    """`enqueue --to --text` prints one id; `job ID --json` has exactly the documented keys."""
    code, out, _ = run(redis_url, "enqueue", "--to", "+90 532 123 45 67", "--text", "hello")
    assert code == 0
    job_id = out.strip()
    code, out, _ = run(redis_url, "job", job_id, "--json")
    assert code == 0
    view = json.loads(out)
    assert set(view) == {
        "id", "state", "account", "attempts", "last_code", "wamid", "priority", "delivery",
        "history",
    }  # fmt: skip
    assert (view["id"], view["state"], view["account"], view["attempts"]) == (
        job_id,
        "queued",
        "default",
        0,
    )
    (event,) = view["history"]
    assert set(event) == {"at", "event", "code", "action", "delay_s"}
    assert event["event"] == "enqueued"
    assert event["at"].endswith("Z")


def test_enqueue_template_with_options(redis_url, runtime):
    """A template with an idempotency key and a ttl; the same key again gives the same id."""
    args = (
        "enqueue",
        "--to",
        "905321234567",
        "--template",
        "order_update",
        "--lang",
        "tr",
        "--idempotency-key",
        "o-7",
        "--ttl",
        "600",
    )
    first = run(redis_url, *args)[1].strip()
    again = run(redis_url, *args)[1].strip()
    assert first == again
    job = runtime.jobs.get(first)
    assert job.message["template"] == {
        "name": "order_update",
        "language": {"code": "tr", "policy": "deterministic"},
        "components": [],
    }
    assert job.expires_at == pytest.approx(job.enqueued_at + 600, abs=1)


def test_enqueue_refuses_a_bad_number_naming_the_field(redis_url, runtime):
    """A bad --to is exit 2 with the field named; nothing is written."""
    code, out, err = run(redis_url, "enqueue", "--to", "call me", "--text", "hi")
    assert (code, out) == (2, "")
    assert "to:" in err
    assert runtime.redis.dbsize() == 0


def test_enqueue_file_all_or_nothing_with_every_bad_line_numbered(redis_url, runtime, tmp_path):
    """A JSON-lines file with a broken and an invalid line enqueues nothing and names both."""
    lines = [
        json.dumps(text(1)),
        "{not json",
        json.dumps({"message": text(3, to="abc"), "idempotency_key": "k3"}),
        "",
        json.dumps({"message": text(5), "ttl_s": -1}),
        json.dumps(text(6)),
    ]
    path = tmp_path / "jobs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    code, out, err = run(redis_url, "enqueue", "--file", str(path))
    assert (code, out) == (2, "")
    assert "3 bad line(s), nothing enqueued" in err
    assert "line 2: not JSON" in err
    assert "line 3: message.to:" in err
    assert "line 5: ttl_s:" in err
    assert runtime.redis.dbsize() == 0


def test_enqueue_file_from_stdin_writes_every_line(redis_url, runtime):
    """Good lines from stdin, bare payloads and envelopes: one id per line, in order."""
    stdin = "\n".join(
        [json.dumps(text(1)), json.dumps({"message": text(2), "idempotency_key": "two"})]
    )
    code, out, _ = run(redis_url, "enqueue", "--file", "-", stdin=stdin)
    assert code == 0
    ids = out.split()
    assert len(ids) == 2
    assert runtime.jobs.get(ids[1]).key == "two"
    assert [runtime.jobs.get(i).message["text"]["body"] for i in ids] == ["message 1", "message 2"]


def test_status_has_exactly_the_spec_shape_and_follows_halt_and_resume(redis_url, runtime):
    """`status --json` has exactly the documented keys; halt shows code, reason and since; resume releases."""
    runtime.producer.enqueue_many([text(i) for i in range(3)])
    code, out, _ = run(redis_url, "status", "--json")
    assert code == 0
    view = json.loads(out)
    assert view == {
        "queue": {"name": "messages", "depth": 3, "scheduled": 0, "held": 0, "in_flight": 0},
        "halted": None,
        "billing_breaker": "closed",
        "cooldown_until": None,
        "dlq": {"total": 0, "by_code": {}},
        "send_rate_per_s": 0.0,
        "workers": 0,
        "store": {"kind": "redis", "primaries": 1, "replicas": 0},
        "broker": {"kind": "redis"},
        "accounts": {
            "default": {
                "halted": None,
                "billing_breaker": "closed",
                "cooldown_until": None,
                "bulk_paused_until": None,
                "depth": 3,
                "held": 0,
                "dlq_total": 0,
                "limits": {"sec": 80, "min": 4800, "learned": {"sec": False, "min": False}},
                "templates_held": [],
            }
        },
        "redis": redis_url,
    }
    assert run(redis_url, "halt", "--reason", "rotating keys")[0] == 0
    view = json.loads(run(redis_url, "status", "--json")[1])
    halted = view["halted"]
    assert (halted["code"], halted["reason"], halted["by"]) == (
        "MANUAL",
        "rotating keys",
        "operator",
    )
    assert halted["since"].endswith("Z")
    assert view["accounts"]["default"]["halted"] == halted
    code, out, _ = run(redis_url, "resume")
    assert code == 0
    assert "0 held job(s) released" in out
    assert json.loads(run(redis_url, "status", "--json")[1])["halted"] is None


def test_status_counts_the_workers_alive(redis_url, tmp_path):
    """A running worker command is counted in `status`; once it stops, it no longer is."""

    def workers():
        return json.loads(run(redis_url, "status", "--json")[1])["workers"]

    assert workers() == 0
    worker = start_worker(worker_env(redis_url, "http://127.0.0.1:9"), tmp_path / "worker.log")
    try:
        wait_for(lambda: workers() == 1, timeout_s=20, what="the worker's heartbeat")
    finally:
        worker.stop()
    assert workers() == 0


def test_send_rate_and_in_flight_come_from_the_shared_state(redis_url, runtime):
    """The send rate is the last ten seconds' mean; jobs leased and out of the broker are in flight."""
    now = int(time.time())
    for second in range(now - 5, now):
        runtime.redis.hset(runtime.keys.answers_in_second(second), "OK", 4)
    runtime.redis.zadd(runtime.keys.leases, {"0123456789abcdef0123456789abcdef|1": now + 30})
    view = json.loads(run(redis_url, "status", "--json")[1])
    assert view["send_rate_per_s"] == pytest.approx(2.0, abs=0.5)
    assert view["queue"]["in_flight"] == 1


def test_codes_are_case_insensitive_and_unknown_accounts_are_refused(redis_url, runtime):
    """`--code bill_001` is BILL_001; `--account typo` is exit 2 naming the known accounts."""
    ids = runtime.producer.enqueue_many([text(1), text(2)])
    park(runtime, ids[0])
    park(runtime, ids[1], code="GW_001", reason="permanent")
    listed = run(redis_url, "dlq", "list", "--code", "bill_001", "--json")[1].splitlines()
    assert [json.loads(line)["id"] for line in listed] == [ids[0]]
    assert run(redis_url, "dlq", "replay", "--code", "gw_001", "--dry-run")[1].split() == [ids[1]]
    for args in (("resume",), ("halt", "--reason", "x"), ("status",), ("dlq", "purge", "--yes")):
        code, out, err = run(redis_url, *args, "--account", "typo")
        assert (code, out) == (2, ""), args
        assert "unknown account 'typo' (known: default)" in err
    assert runtime.switches.halted("default") is None


@pytest.mark.processes
def test_version_prints_the_version():
    """`msgworker --version` prints the installed version and exits 0."""
    code, out, _ = run(None, "--version")
    assert (code, out.strip()) == (0, f"msgworker {version('msgworker')}")


def test_celery_worker_options_win_over_msgworker_defaults(redis_url, tmp_path):
    """`worker --concurrency 8 -l DEBUG -Q q2 -n given@%h` and `-c 3 -P prefork` run as given;
    without -n a worker is named after its process (`msgworker-PID@host`)."""
    env = worker_env(redis_url, "http://127.0.0.1:9")
    args = ["--concurrency", "8", "-l", "DEBUG", "-Q", "q2", "-n", "given@%h"]
    threads = WorkerProcess([str(BIN / "msgworker"), "worker", *args], env, tmp_path / "a.log")
    try:
        threads.wait_ready()
    finally:
        threads.stop()
    log = threads.log()
    assert "concurrency: 8 (thread)" in log
    assert ".> q2 " in log
    assert ".> messages " not in log
    assert '"level": "debug"' in log
    assert re.search(r'"given@[^"]+ ready\.', log)
    prefork = WorkerProcess(
        [str(BIN / "msgworker"), "worker", "-c3", "-P", "prefork"], env, tmp_path / "b.log"
    )
    try:
        prefork.wait_ready()
        assert len(prefork.children()) == 3
    finally:
        prefork.stop()
    log = prefork.log()
    assert "concurrency: 3 (prefork)" in log
    assert ".> messages " in log
    assert '"level": "debug"' not in log
    assert re.search(rf'"msgworker-{prefork.pid}@[^"]+ ready\.', log)


def test_the_worker_metrics_listen_on_metrics_host(redis_url, tmp_path):
    """METRICS_HOST=127.0.0.2: /metrics answers there and not on 127.0.0.1."""
    port = free_port()
    env = worker_env(
        redis_url, "http://127.0.0.1:9", metrics_port=str(port), metrics_host="127.0.0.2"
    )
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        answer = httpx.get(f"http://127.0.0.2:{port}/metrics", timeout=10)
        assert answer.status_code == 200
        assert "msgworker_queue_depth" in answer.text
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    finally:
        worker.stop()


def test_dlq_list_show_export_and_counts(redis_url, runtime):
    """Parked jobs are listed (JSON lines), shown, exported; readers ignore unknown fields."""
    ids = runtime.producer.enqueue_many([text(i) for i in range(3)])
    park(runtime, ids[0])
    park(runtime, ids[1], code="GW_001", reason="permanent")
    lines = run(redis_url, "dlq", "list", "--json")[1].splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == ids[:2]
    assert set(records[0]) >= {
        "id",
        "idempotency_key",
        "account",
        "message",
        "code",
        "group",
        "status",
        "description",
        "params",
        "reason",
        "attempts",
        "enqueued_at",
        "parked_at",
    }
    assert "a_field_from_the_future" not in records[0]
    only_billing = run(redis_url, "dlq", "list", "--code", "BILL_001", "--json")[1].splitlines()
    assert [json.loads(line)["id"] for line in only_billing] == [ids[0]]
    shown = json.loads(run(redis_url, "dlq", "show", ids[1], "--json")[1])
    assert (shown["code"], shown["reason"]) == ("GW_001", "permanent")
    assert len(run(redis_url, "dlq", "export")[1].splitlines()) == 2
    status = json.loads(run(redis_url, "status", "--json")[1])
    assert status["dlq"] == {"total": 2, "by_code": {"BILL_001": 1, "GW_001": 1}}


def test_views_for_people_mask_the_number_unless_reveal(redis_url, runtime):
    """`dlq list` and `dlq show` mask `to`; --reveal shows it; --json and export stay complete."""
    (job_id,) = runtime.producer.enqueue_many([text(1)])
    park(runtime, job_id)
    for args in (("dlq", "list"), ("dlq", "show", job_id)):
        code, out, _ = run(redis_url, *args)
        assert code == 0
        assert "905321234567" not in out
        assert "90532*****67" in out
        code, out, _ = run(redis_url, *args, "--reveal")
        assert "905321234567" in out
    for args in (("dlq", "list", "--json"), ("dlq", "show", job_id, "--json"), ("dlq", "export")):
        assert json.loads(run(redis_url, *args)[1])["message"]["to"] == "905321234567"


def test_dlq_replay_needs_a_selection_and_dry_run_changes_nothing(redis_url, runtime):
    """Replay without --code/--id/--all is a usage error; --dry-run lists and keeps the DLQ."""
    (job_id,) = runtime.producer.enqueue_many([text(1)])
    park(runtime, job_id)
    assert run(redis_url, "dlq", "replay")[0] == 2
    code, out, err = run(redis_url, "dlq", "replay", "--code", "BILL_001", "--dry-run")
    assert (code, out.split()) == (0, [job_id])
    assert "would replay 1" in err
    assert runtime.dead_letters.counts() == {"BILL_001": 1}


def test_dlq_replay_requeues_keeps_the_key_and_skips_expired_and_sent(redis_url, runtime):
    """Replay schedules parked jobs again with their key; expired ones stay, sent ones go."""
    fresh, sent, expiring = runtime.producer.enqueue_many(
        [
            {"message": text(1), "idempotency_key": "fresh"},
            text(2),
            {"message": text(3), "ttl_s": 0.2},
        ]
    )
    for job_id in (fresh, sent, expiring):
        park(runtime, job_id)
    runtime.redis.set(runtime.keys.ledger("default", runtime.jobs.get(sent).key), "wamid.X")
    time.sleep(0.3)
    code, out, _ = run(redis_url, "dlq", "replay", "--all", "--json", "--rate", "50")
    assert code == 0
    assert json.loads(out) == {
        "replayed": 1,
        "skipped_already_sent": 1,
        "skipped_delivered": 0,
        "skipped_expired": 1,
        "skipped_opted_out": 0,
        "missing": 0,
    }
    job = runtime.jobs.get(fresh)
    assert (job.state, job.key, job.attempts) == (JobState.QUEUED, "fresh", 0)
    assert runtime.jobs.get(sent).state is JobState.SENT
    assert runtime.dead_letters.counts() == {"BILL_001": 1}  # only the expired one stays
    assert [e["event"] for e in job.history][-1] == "replayed"


def test_dlq_replay_is_paced_at_the_rate(redis_url, runtime):
    """Replayed jobs are spread over time at --rate per second, not dumped at once."""
    ids = runtime.producer.enqueue_many([text(i) for i in range(10)])
    for job_id in ids:
        park(runtime, job_id)
    started = time.time()
    assert run(redis_url, "dlq", "replay", "--all", "--rate", "5")[0] == 0
    due = sorted(runtime.jobs.get(i).due_at for i in ids)
    assert due[0] >= started
    assert due[-1] - due[0] == pytest.approx(9 / 5, abs=0.01)


def test_dlq_purge_refuses_without_yes_off_a_terminal_and_purges_with_it(redis_url, runtime):
    """Purge asks on a TTY and refuses elsewhere; --yes removes only what the filter shows."""
    ids = runtime.producer.enqueue_many([text(1), text(2)])
    park(runtime, ids[0])
    park(runtime, ids[1], code="GW_001", reason="permanent")
    code, _, err = run(redis_url, "dlq", "purge", "--code", "GW_001")
    assert code == 2
    assert "--yes" in err
    code, out, _ = run(redis_url, "dlq", "purge", "--code", "GW_001", "--yes")
    assert (code, out.strip()) == (0, "purged 1 dead letter(s)")
    assert runtime.dead_letters.counts() == {"BILL_001": 1}


def test_dlq_purge_needs_a_filter_or_all(redis_url, runtime):
    """`purge --yes` alone is refused (exit 2) and deletes nothing; --account or --all purge."""
    ids = runtime.producer.enqueue_many([text(1), text(2)])
    park(runtime, ids[0])
    park(runtime, ids[1], code="GW_001", reason="permanent")
    code, out, err = run(redis_url, "dlq", "purge", "--yes")
    assert (code, out) == (2, "")
    assert "--all" in err
    assert runtime.dead_letters.counts() == {"BILL_001": 1, "GW_001": 1}
    assert run(redis_url, "dlq", "purge", "--code", "x", "--all", "--yes")[0] == 2
    code, out, _ = run(redis_url, "dlq", "purge", "--account", "default", "--yes")
    assert (code, out.strip()) == (0, "purged 2 dead letter(s)")
    assert runtime.dead_letters.counts() == {}


def dlq_state(runtime):
    """The whole DLQ as stored: records (parsed), the index with its times, the counts."""
    index = runtime.redis.zrange(runtime.keys.dead_letter_index, 0, -1, withscores=True)
    records = {job_id: runtime.dead_letters.get(job_id) for job_id, _ in index}
    counts = runtime.redis.hgetall(runtime.keys.dead_letter_counts)
    return records, index, counts


def test_export_purge_all_import_gives_the_same_dlq(redis_url, runtime, tmp_path):
    """A round trip export → purge --all → import restores records, index and counts; twice adds nothing."""
    ids = runtime.producer.enqueue_many([text(i) for i in range(5)])
    for n, job_id in enumerate(ids):
        park(runtime, job_id, **({"code": "GW_001", "reason": "permanent"} if n % 2 else {}))
    records, index, counts = dlq_state(runtime)
    exported = run(redis_url, "dlq", "export")[1]
    assert len(exported.splitlines()) == 5
    path = tmp_path / "dlq.jsonl"
    path.write_text(exported)
    assert run(redis_url, "dlq", "purge", "--all", "--yes")[0] == 0
    assert dlq_state(runtime) == ({}, [], {})
    code, out, _ = run(redis_url, "dlq", "import", str(path))
    assert code == 0
    assert "imported 5 dead letter(s)" in out
    again_records, again_index, again_counts = dlq_state(runtime)
    assert again_counts == counts
    assert [i for i, _ in again_index] == [i for i, _ in index]
    assert [t for _, t in again_index] == pytest.approx([t for _, t in index], abs=1e-5)
    for job_id, record in records.items():
        restored = again_records[job_id]
        before, after = record.to_dict(), restored.to_dict()
        times = {"enqueued_at", "parked_at"}
        assert {k: after[k] for k in times} == pytest.approx(
            {k: before[k] for k in times}, abs=1e-5
        )
        assert {k: v for k, v in after.items() if k not in times} == {
            k: v for k, v in before.items() if k not in times
        }
    code, out, _ = run(redis_url, "dlq", "import", "-", stdin=exported)
    assert code == 0
    assert "imported 0 dead letter(s); skipped 5 already" in out
    assert dlq_state(runtime)[2] == counts
    assert count_scheduled(runtime.redis, runtime.keys) == 0  # nothing was scheduled, nothing sent
    code, out, _ = run(redis_url, "dlq", "replay", "--all", "--json", "--rate", "100")
    assert json.loads(out)["replayed"] == 5


def test_dlq_import_with_a_bad_line_writes_nothing_and_numbers_every_bad_line(redis_url, runtime):
    """Lines that are not records are reported by number; the good ones are not written either."""
    (job_id,) = runtime.producer.enqueue_many([text(1)])
    park(runtime, job_id)
    good = run(redis_url, "dlq", "export")[1].strip()
    assert run(redis_url, "dlq", "purge", "--all", "--yes")[0] == 0
    record = json.loads(good)
    lines = [
        good,
        "{broken",
        json.dumps({**record, "id": "x:history"}),
        json.dumps({**record, "account": "nobody"}),
        json.dumps({**record, "parked_at": "yesterday"}),
        json.dumps([1, 2]),
        json.dumps({**record, "message": {**record["message"], "text": {"body": "x" * 5000}}}),
    ]
    code, out, err = run(redis_url, "dlq", "import", "-", stdin="\n".join(lines))
    assert (code, out) == (2, "")
    assert "6 bad line(s), nothing imported" in err
    bad = ((2, "not JSON"), (3, "id:"), (4, "account:"), (5, "parked_at:"), (6, ""))
    for number, field in (*bad, (7, "message.text.body")):
        assert f"line {number}: {field}" in err
    assert dlq_state(runtime) == ({}, [], {})


@pytest.mark.processes
def test_unreachable_redis_is_exit_69_naming_the_url_without_password():
    """Redis down: exit 69 and one line with the URL, the password masked."""
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    code, _, err = run(url, "status", "--json")
    assert code == 69
    assert err.strip() == f"msgworker: cannot reach Redis at {url.replace('hunter2', '***')}"


def test_a_password_in_the_query_is_masked_and_never_a_traceback(redis_url, tmp_path):
    """`?password=` in REDIS_URL or BROKER_URL: masked in every line; the broker form works."""
    down = f"redis://127.0.0.1:{free_port()}/1?password=S3cr3tQ"
    code, out, err = run(redis_url, "status", redis_url=down)
    assert (code, out) == (69, "")
    masked = down.replace("redis://", "redis://:***@").replace("?password=S3cr3tQ", "")
    assert err == f"msgworker: cannot reach Redis at {masked}\n"
    code, out, err = run(None, "status", "--json", broker_url=f"{redis_url}?password=S3cr3tQ")
    assert (code, err) == (0, "")
    assert json.loads(out)["redis"] == redis_url.replace("redis://", "redis://:***@")
    code, out, err = run(None, "status", broker_url="redis://:S3cr3tQ@h:1/0?password=other")
    assert (code, out) == (78, "")
    assert err == "msgworker: invalid settings: MSGWORKER_BROKER_URL: gives the password twice\n"
    env = worker_env(f"{redis_url}?password=S3cr3tQ", "http://127.0.0.1:9")
    worker = start_worker(env, tmp_path / "worker.log")
    worker.stop()
    assert "S3cr3tQ" not in worker.log()


def test_an_unreachable_broker_is_exit_69_naming_it_masked(redis_url):
    """State Redis up, broker down: one line naming the broker's masked URL, exit 69."""
    down = f"redis://u:S3cr3tQ@127.0.0.1:{free_port()}/0"
    code, out, err = run(down, "status", "--json", redis_url=redis_url)
    assert (code, out) == (69, "")
    assert err == f"msgworker: cannot reach the broker at {down.replace('u:S3cr3tQ', '***:***')}\n"


def test_bad_setting_is_exit_78_with_one_line_naming_it(redis_url):
    """A bad MSGWORKER_ value stops the command with one line that names the variable."""
    code, _, err = run(redis_url, "status", rate_per_sec="lots")
    assert code == 78
    assert err.count("\n") == 1
    assert "MSGWORKER_RATE_PER_SEC" in err


def test_an_unknown_setting_stops_every_command_with_exit_78(redis_url, runtime):
    """A misspelt MSGWORKER_ variable: exit 78, one line naming it and the closest name."""
    for args in (("status",), ("enqueue", "--to", "905321234567", "--text", "hi"), ("worker",)):
        code, out, err = run(redis_url, *args, rate_per_second="20")
        assert (code, out) == (78, ""), args
        assert err.count("\n") == 1
        assert "MSGWORKER_RATE_PER_SECOND" in err
        assert "MSGWORKER_RATE_PER_SEC?" in err
    assert runtime.redis.dbsize() == 0


def test_env_file_picks_the_deployment_and_status_names_its_redis(redis_url, runtime, tmp_path):
    """Run from another folder, ENV_FILE still picks the .env; status shows the Redis it reads."""
    runtime.producer.enqueue_many([text(1), text(2)])
    env_file = tmp_path / "prod.env"
    with_password = redis_url.replace("redis://", "redis://:topsecret@")
    env_file.write_text(f"MSGWORKER_BROKER_URL={redis_url}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code, out, _ = run(None, "status", "--json", cwd=elsewhere, env_file=str(env_file))
    assert code == 0
    view = json.loads(out)
    assert (view["queue"]["depth"], view["redis"]) == (2, redis_url)
    code, out, _ = run(None, "status", cwd=elsewhere, env_file=str(env_file))
    assert code == 0
    assert redis_url in out
    env_file.write_text(f"MSGWORKER_BROKER_URL={with_password}\n")
    code, out, err = run(None, "status", "--json", cwd=elsewhere, env_file=str(env_file))
    assert "topsecret" not in out + err
    masked = with_password.replace("topsecret", "***")
    assert masked in out + err


def test_python_dash_m_worker_is_the_same_command(redis_url):
    """`python -m worker` runs the CLI."""
    env = {**os.environ, "MSGWORKER_BROKER_URL": redis_url}
    done = subprocess.run(  # noqa: S603
        [str(BIN / "python"), "-m", "worker", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert json.loads(done.stdout)["queue"]["name"] == "messages"


def run_on_a_terminal(redis_url, *args, timeout_s=60):
    """Run the console script with a pseudo-terminal as stdout and stderr; returns (code, text)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGWORKER_")}
    env.update(MSGWORKER_BROKER_URL=redis_url, TERM="xterm-256color", COLUMNS="160")
    leader, follower = pty.openpty()
    process = subprocess.Popen(  # noqa: S603
        [str(BIN / "msgworker"), *args], env=env, stdout=follower, stderr=follower, close_fds=True
    )
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the other end closed
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    os.close(leader)
    return process.wait(timeout=10), b"".join(chunks).decode(errors="replace")


def test_status_for_people_shows_every_figure_with_colour_only_on_a_terminal(redis_url, runtime):
    """Depth, scheduled, held, in flight, rate, drain time, halt, breaker, cooldown, DLQ; ANSI on a TTY."""
    runtime.producer.enqueue_many([text(i) for i in range(3)])
    runtime.switches.halt("default", reason="rotating keys")
    code, out, _ = run(redis_url, "status")
    assert code == 0
    for label in (
        "due now",
        "scheduled",
        "held",
        "in flight",
        "sending",
        "backlog clears in",
        "halted",
        "billing breaker",
        "cooldown",
        "dead letters",
    ):
        assert label in out
    assert "HALTED by the operator (MANUAL), until `msgworker resume`" in " ".join(out.split())
    assert "rotating keys" in out
    assert "\x1b[" not in out  # no colour into a pipe
    code, shown = run_on_a_terminal(redis_url, "status")
    assert code == 0
    assert "\x1b[" in shown  # colour on a terminal


def test_a_drain_interrupted_half_way_loses_nothing_and_a_rerun_finishes_it(redis_url, runtime):
    """Ctrl-C mid-replay stops after the slice in hand (exit 130); nothing is lost; a re-run goes on."""
    ids = runtime.producer.enqueue_many([text(i) for i in range(60)])
    for job_id in ids:
        park(runtime, job_id)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGWORKER_")}
    env["MSGWORKER_BROKER_URL"] = redis_url
    process = subprocess.Popen(  # noqa: S603
        [str(BIN / "msgworker"), "dlq", "replay", "--all", "--rate", "20", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def replayed_some():
        return 0 < len(ids) - sum(runtime.dead_letters.counts().values()) < len(ids)

    wait_for(replayed_some, timeout_s=20, what="the drain to be under way")
    process.send_signal(2)  # SIGINT, as Ctrl-C
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 130
    summary = json.loads(out)
    left = sum(runtime.dead_letters.counts().values())
    assert summary["replayed"] + left == 60
    assert summary["remaining"] == left > 0
    in_dlq = {r.id for r in runtime.dead_letters.select(Selection())}
    for job_id in ids:
        state = runtime.jobs.get(job_id).state
        assert (job_id in in_dlq) == (state is JobState.PARKED)  # in exactly one place
    code, out, _ = run(redis_url, "dlq", "replay", "--all", "--rate", "50", "--json")
    assert code == 0
    assert json.loads(out)["replayed"] == left
    assert runtime.dead_letters.counts() == {}
    assert {runtime.jobs.get(i).state for i in ids} <= {JobState.QUEUED, JobState.SCHEDULED}


def test_replay_shows_a_progress_bar_with_rate_and_time_left_on_a_terminal(redis_url, runtime):
    """On a TTY the drain draws a bar with count, rate and ETA, then the summary."""
    ids = runtime.producer.enqueue_many([text(i) for i in range(30)])
    for job_id in ids:
        park(runtime, job_id)
    code, shown = run_on_a_terminal(redis_url, "dlq", "replay", "--all", "--rate", "30")
    assert code == 0
    assert "replaying" in shown
    assert "30/30" in shown
    assert "/s" in shown
    assert "done: replayed 30" in shown


@pytest.mark.parametrize("suffix", [":history", "", "*", "/../x", " "])
def test_an_id_that_names_no_job_is_no_job_never_a_traceback(redis_url, runtime, suffix):
    """`job <id>:history` and other odd ids answer "no job" (exit 1), as an unknown id does."""
    (job_id,) = runtime.producer.enqueue_many([text(1)])
    park(runtime, job_id)
    odd = job_id + suffix if suffix else "0" * 32
    for args in (("job", odd), ("job", odd, "--json"), ("dlq", "show", odd)):
        code, out, err = run(redis_url, *args)
        assert (code, out) == (1, ""), args
        assert err.startswith("msgworker: no "), err
        assert "Traceback" not in err
    for command in ("purge", "replay"):
        code, _, _ = run(
            redis_url, "dlq", command, "--id", odd, "--yes" if command == "purge" else "--dry-run"
        )
        assert code == 0
    assert runtime.dead_letters.counts() == {"BILL_001": 1}  # an odd --id selects nothing


def test_job_for_people_lists_the_history_as_a_table(redis_url, runtime):
    """`job ID` shows state, attempts, last code and one line per history event."""
    (job_id,) = runtime.producer.enqueue_many([text(1)])
    park(runtime, job_id, code="GW_001", reason="permanent")
    code, out, _ = run(redis_url, "job", job_id)
    assert code == 0
    assert "parked" in out
    lines = [line for line in out.splitlines() if line.startswith("20")]
    assert [line.split()[1] for line in lines] == ["enqueued", "parked"]
    assert "GW_001" in lines[1]


def test_cooldown_clear_ends_a_cooldown_set_a_day_ahead(redis_url, runtime):
    """A cooldown from a garbled wait (a day ahead) is cleared by `msgworker cooldown clear`."""
    key = runtime.keys.cooldown("default")
    runtime.redis.set(key, int((time.time() + 86_400) * 1000))
    code, out, _ = run(redis_url, "cooldown", "clear")
    assert (code, out.strip()) == (0, "account default: cooldown cleared")
    assert runtime.switches.cooldown_until("default") is None
    code, out, _ = run(redis_url, "cooldown", "clear")
    assert (code, out.strip()) == (0, "account default: no cooldown")
