"""`msgworker status` with several accounts: each one's halt (by whom, since when), held jobs,
breaker and the limits its calls are paced by, in the JSON view and for people."""

from __future__ import annotations

import json
import time

import pytest

from tests.cli.test_cli import run
from tests.support.messages import text
from worker.service.runtime import Runtime
from worker.settings import Settings

pytestmark = pytest.mark.processes  # every test here runs the console script


@pytest.fixture
def accounts(tmp_path):
    path = tmp_path / "accounts.toml"
    path.write_text(
        '[accounts.brand_a]\napi_key_env = "A_KEY"\nrate_per_sec = 20\nrate_per_min = 600\n'
        '[accounts.brand_b]\napi_key_env = "B_KEY"\n'
    )
    return path


@pytest.fixture
def two(redis_url, accounts):
    """brand_a halted by the Gateway with 2 jobs held, brand_b halted by the operator; 1 due."""
    runtime = Runtime(Settings(broker_url=redis_url, accounts_file=accounts, _env_file=None))
    held = runtime.producer.enqueue_many(
        [{"message": text(i), "account": "brand_a"} for i in range(2)]
    )
    runtime.producer.enqueue_many([{"message": text(9), "account": "brand_b"}])
    since = time.time() - 90
    runtime.redis.hset(  # as a delivery records an AUTH_001 answer: no "by"
        runtime.keys.halt("brand_a"),
        mapping={"since": repr(since), "code": "AUTH_001", "reason": "Invalid API key"},
    )
    for job_id in held:  # as begin.lua holds a dispatched job of a halted account
        job = runtime.jobs.get(job_id)
        runtime.redis.zrem(runtime.keys.due("brand_a", job.priority), f"{job_id}|{job.gen}")
        runtime.redis.hset(runtime.keys.job(job_id), "state", "held")
        runtime.redis.rpush(runtime.keys.held("brand_a"), job_id)
    runtime.switches.halt("brand_b", reason="campaign paused")
    yield runtime
    runtime.close()


def test_json_shows_each_account_with_who_halted_it_and_its_own_limits(redis_url, accounts, two):
    """brand_a: by the Gateway, 2 held, 20/s and 600/min of its own; brand_b: by the operator,
    the deployment's 80/s and 4,800/min. The top level is the first configured account's."""
    code, out, err = run(redis_url, "status", "--json", accounts_file=str(accounts))
    assert code == 0, err
    view = json.loads(out)
    a, b = view["accounts"]["brand_a"], view["accounts"]["brand_b"]
    assert (a["halted"]["code"], a["halted"]["by"], a["held"]) == ("AUTH_001", "gateway", 2)
    assert a["halted"]["since"].endswith("Z")
    assert a["limits"] == {"sec": 20, "min": 600, "learned": {"sec": False, "min": False}}
    assert (b["halted"]["reason"], b["halted"]["by"], b["held"]) == (
        "campaign paused",
        "operator",
        0,
    )
    assert b["limits"] == {"sec": 80, "min": 4800, "learned": {"sec": False, "min": False}}
    assert (a["depth"], b["depth"]) == (0, 1)
    assert a["billing_breaker"] == b["billing_breaker"] == "closed"
    assert view["halted"] == a["halted"]
    code, out, _ = run(
        redis_url, "status", "--json", "--account", "brand_b", accounts_file=str(accounts)
    )
    assert json.loads(out)["halted"] == b["halted"]


def test_for_people_every_account_is_shown_unless_one_is_asked(redis_url, accounts, two):
    """Without --account both blocks, each with its halt, held jobs and limits; with one, only it."""
    code, out, err = run(
        redis_url, "status", accounts_file=str(accounts), halt_probe_interval_s="30"
    )
    assert code == 0, err
    flat = " ".join(out.split())
    a_block = flat[flat.index("account brand_a") : flat.index("account brand_b")]
    b_block = flat[flat.index("account brand_b") : flat.rindex("dead letters 0")]
    assert "HALTED by the Gateway (AUTH_001), probed every 30 s: resumes by itself" in a_block
    assert "ago): Invalid API key" in a_block
    assert "held 2" in a_block
    assert "rate limits 20/s, 600/min (not learned)" in a_block
    assert "HALTED by the operator (MANUAL), until `msgworker resume`" in b_block
    assert "campaign paused" in b_block
    assert "due now 1" in b_block
    assert "rate limits 80/s, 4800/min" in b_block
    code, out, _ = run(redis_url, "status", "--account", "brand_b", accounts_file=str(accounts))
    assert "account brand_b" in out
    assert "brand_a" not in out
