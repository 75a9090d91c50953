"""Two accounts with their own keys on real workers: a halt of one never touches the other, a
halt the Gateway caused heals itself once the key works, an operator's halt waits for resume."""

from __future__ import annotations

import subprocess
import time
from collections import Counter

import pytest

from tests.support.cluster import BIN, Sandbox, start_worker, worker_env
from tests.support.processes import wait_for
from worker.sandbox.config import SandboxConfig
from worker.sandbox.server import RunningSandbox
from worker.service.runtime import Runtime
from worker.settings import Settings
from worker.store.states import JobState

pytestmark = pytest.mark.processes  # a real worker and the sandbox in every test

KEY_A = "sk_account_a_4d3c2b1a0f"
KEY_B = "sk_account_b_9e8d7c6b5a"
PROBE_S = 2.0


@pytest.fixture
def sandbox():
    config = SandboxConfig(api_keys=(KEY_A, KEY_B), rate_per_sec=1000, rate_per_min=100_000)
    with RunningSandbox(config) as running:
        admin = Sandbox(running.url)
        yield admin
        admin.close()


@pytest.fixture
def setup(redis_url, sandbox, tmp_path):
    """Account a reads its key from a file (wrong at first), b from a variable."""
    key_file = tmp_path / "a.key"
    key_file.write_text("sk_account_a_revoked_000\n")
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(
        f'[accounts.a]\napi_key_file = "{key_file}"\nsandbox = false\n'
        '[accounts.b]\napi_key_env = "B_GATEWAY_KEY"\nsandbox = false\n'
    )
    env = worker_env(
        redis_url,
        sandbox.url,
        accounts_file=str(accounts),
        halt_probe_interval_s=str(PROBE_S),
        sandbox="false",
    )
    env["B_GATEWAY_KEY"] = KEY_B
    worker = start_worker(env, tmp_path / "worker.log", concurrency=4)
    settings = Settings(broker_url=redis_url, accounts_file=accounts, _env_file=None)
    runtime = Runtime(settings)
    yield runtime, key_file, env
    worker.stop()
    runtime.close()


def text(account, i):
    body = {"to": "905320000001", "type": "text", "text": {"body": f"{account}-{i}"}}
    return {"message": body, "account": account}


def delivered(sandbox):
    """Bodies accepted as real sends (probes carry is_fake=true and are never delivered)."""
    messages = sandbox.messages()
    return Counter(m["body"]["text"]["body"] for m in messages if not m["fake"])


def states(runtime, ids):
    return {runtime.jobs.get(i).state for i in ids}


def msgworker(env, *args):
    done = subprocess.run(  # noqa: S603 - our own console script
        [str(BIN / "msgworker"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def test_a_rejected_key_halts_its_account_only_and_heals_when_the_key_file_changes(setup, sandbox):
    """a's key is refused (AUTH_001) while b sends; the key file rewritten, a resumes by itself
    within one probe interval and every held job goes out once."""
    runtime, key_file, _ = setup
    ids_a = runtime.producer.enqueue_many([text("a", i) for i in range(20)])
    ids_b = runtime.producer.enqueue_many([text("b", i) for i in range(20)])
    halt = wait_for(lambda: runtime.switches.halted("a"), what="a halted")
    assert (halt.code, halt.by_operator) == ("AUTH_001", False)
    wait_for(lambda: states(runtime, ids_b) == {JobState.SENT}, what="b all sent")
    more_b = runtime.producer.enqueue_many([text("b", i) for i in range(20, 40)])
    wait_for(lambda: states(runtime, more_b) == {JobState.SENT}, what="b still sending")
    assert runtime.switches.halted("b") is None
    assert runtime.switches.held_count("b") == 0
    assert states(runtime, ids_a) <= {JobState.HELD, JobState.QUEUED}
    # Probes come one interval apart, with the key as it is: still refused (AUTH_001 answers
    # arrive while a is halted, at most one an interval).
    refused_before = sum(1 for r in sandbox.requests() if r["code"] == "AUTH_001")
    time.sleep(PROBE_S * 2.5)
    probes_refused = sum(1 for r in sandbox.requests() if r["code"] == "AUTH_001") - refused_before
    assert 1 <= probes_refused <= 3, probes_refused
    assert runtime.switches.halted("a") is not None

    key_file.write_text(f"  {KEY_A}\n")
    rotated = time.monotonic()
    wait_for(lambda: runtime.switches.halted("a") is None, timeout_s=PROBE_S + 5, what="healed")
    # One interval, the wait for every worker's copy of the key (1 s), and scheduling slack.
    assert time.monotonic() - rotated <= PROBE_S + 2.5
    wait_for(lambda: states(runtime, ids_a) == {JobState.SENT}, timeout_s=30, what="a all sent")
    bodies = delivered(sandbox)
    assert sorted(bodies) == sorted([f"a-{i}" for i in range(20)] + [f"b-{i}" for i in range(40)])
    assert set(bodies.values()) == {1}  # each once; the probe that healed it delivered nothing
    probes = [m for m in sandbox.messages() if m["fake"]]
    assert len(probes) == 1
    events = [e["event"] for i in ids_a for e in runtime.jobs.get(i).history]
    assert "auto_resumed" in events
    assert not runtime.redis.exists(runtime.keys.incident("halt", "a"))  # the alert resolved


def test_an_operator_halt_stays_until_resume(setup, sandbox):
    """`msgworker halt --account a` outlives several probe intervals; `resume` sends each once."""
    runtime, key_file, env = setup
    key_file.write_text(KEY_A)
    code, _, err = msgworker(env, "halt", "--account", "a", "--reason", "maintenance")
    assert code == 0, err
    ids = runtime.producer.enqueue_many([text("a", i) for i in range(10)])
    wait_for(lambda: runtime.switches.held_count("a") > 0, what="jobs held")
    time.sleep(PROBE_S * 2.5)
    assert runtime.switches.halted("a").by_operator
    assert delivered(sandbox) == Counter()
    assert [m for m in sandbox.messages() if m["fake"]] == []  # an operator halt is not probed
    code, _, err = msgworker(env, "resume", "--account", "a")
    assert code == 0, err
    wait_for(lambda: states(runtime, ids) == {JobState.SENT}, timeout_s=30, what="all sent")
    assert delivered(sandbox) == Counter(f"a-{i}" for i in range(10))
