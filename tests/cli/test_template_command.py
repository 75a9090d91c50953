"""`msgworker template hold|release NAME --lang L [--account A]` and the held templates in
`msgworker status`: the console script run for real against a real Redis."""

from __future__ import annotations

import json
import time

import pytest

from tests.cli.test_cli import run
from tests.support.jobs import add_job, take
from tests.support.messages import template
from worker.store.claims import Execution
from worker.store.ratelimit import RateLimit
from worker.store.states import JobState

pytestmark = pytest.mark.processes  # every test here runs the console script


def begin(runtime, job_id):
    execution = Execution(job_id, take(runtime, job_id), holder=f"test-{job_id}")
    return runtime.transitions.begin(
        execution, now=time.time(), lease_s=30, probe_interval_s=30, rate=RateLimit(1000, 100_000)
    )


def templates_held(redis_url):
    code, out, err = run(redis_url, "status", "--json")
    assert code == 0, err
    return json.loads(out)["accounts"]["default"]["templates_held"]


def test_hold_then_release_by_hand(redis_url, runtime):
    """hold: listed in status (reason operator), the template's job held at its begin; release:
    the job queued again, once, and the list empty."""
    code, out, err = run(redis_url, "template", "hold", "spring_sale", "--lang", "en_US")
    assert (code, err) == (0, "")
    assert "held" in out
    add_job(runtime.jobs, "j1", message=template())
    assert begin(runtime, "j1").verdict == "held"
    [held] = templates_held(redis_url)
    assert (held["name"], held["language"], held["reason"], held["jobs"]) == (
        "spring_sale",
        "en_US",
        "operator",
        1,
    )
    assert held["since"].endswith("Z")
    code, out, _ = run(redis_url, "status")
    assert "template held" in out
    assert "msgworker template release spring_sale --lang en_US" in out
    code, out, _ = run(redis_url, "template", "hold", "spring_sale", "--lang", "en_US")
    assert "already held" in out
    code, out, _ = run(redis_url, "template", "release", "spring_sale", "--lang", "en_US")
    assert code == 0
    assert "1 held job(s)" in out
    assert runtime.jobs.get("j1").state is JobState.QUEUED
    assert templates_held(redis_url) == []
    code, out, _ = run(redis_url, "template", "release", "spring_sale", "--lang", "en_US")
    assert "was not held" in out


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("hold", "Spring Sale", "--lang", "en"), "is not a template name"),
        (("hold", "spring_sale", "--lang", "english"), "is not a language code"),
        (("release", "spring_sale"), "--lang"),
        (("hold", "spring_sale", "--lang", "en", "--account", "nobody"), "unknown account"),
    ],
)
def test_a_bad_name_language_or_account_is_a_usage_error(redis_url, args, said):
    code, _, err = run(redis_url, "template", *args)
    assert code == 2
    assert said in err
