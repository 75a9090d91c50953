"""Metrics from real workers: exact under prefork with recycled children; read by a real Prometheus."""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import API_KEY, start_worker, worker_env
from tests.support.messages import text
from tests.support.processes import RedisServer, free_port, wait_for
from worker.observe.metrics import UNKNOWN_ACCOUNT
from worker.service.runtime import Runtime
from worker.settings import Settings
from worker.store.states import JobState

pytestmark = pytest.mark.e2e


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: apt-get install prometheus (CI's .ci/run does it)")
    return found


_SAMPLE = re.compile(r"^(\w+)(?:\{([^}]*)\})? (\S+)$", re.MULTILINE)


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``; 0 when none."""
    total = 0.0
    for match in _SAMPLE.finditer(text):
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if match.group(1) == name and labels.items() <= found.items():
            total += float(match.group(3))
    return total


def test_ok_counter_is_exact_under_prefork_with_recycled_children(
    redis_url, sandbox, runtime, tmp_path
):
    """200 sends through 4 prefork children recycled every 5 tasks: OK == 200 == the sandbox's."""
    port = free_port()
    env = worker_env(redis_url, sandbox.url, metrics_port=str(port))
    counts = tmp_path / "multiprocess"
    env["PROMETHEUS_MULTIPROC_DIR"] = str(counts)
    worker = start_worker(
        env, tmp_path / "w.log", pool="prefork", concurrency=4, extra=("--max-tasks-per-child", "5")
    )
    try:
        ids = runtime.producer.enqueue_many([text(i) for i in range(200)])
        wait_for(
            lambda: all(runtime.jobs.get(i).state is JobState.SENT for i in ids),
            timeout_s=90,
            what="200 sends",
        )
        exposition = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        worker.stop()
    # Each process that counted left its files (counter_<pid>.db): more processes than the
    # pool's 4 means children were recycled and their counts kept.
    pids = {path.stem.rpartition("_")[2] for path in counts.glob("counter_*.db")}
    assert len(pids) > 4, sorted(pids)
    accepted = sandbox.stats()["accepted"]
    ok = sample(exposition, "msgworker_api_responses_total", code="OK", group="none", status="200")
    assert ok == 200 == accepted
    assert sample(exposition, "msgworker_jobs_total", account="default", outcome="sent") == 200
    assert sample(exposition, "msgworker_send_duration_seconds_count") == 200
    assert sample(exposition, "msgworker_call_arrival_seconds_count") == 200
    assert sample(exposition, "msgworker_enqueued_total") == 200
    assert sample(exposition, "msgworker_queue_depth") == 0
    assert "905321234567" not in exposition
    assert API_KEY not in exposition
    (tmp_path / "metrics.txt").write_text(exposition)
    check = subprocess.run(  # noqa: S603
        [tool("promtool"), "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


@contextmanager
def prometheus_scraping(port: int, tmp_path: Path) -> Iterator[Callable[[str], dict[str, float]]]:
    """A real Prometheus scraping ``127.0.0.1:port`` every second; yields ``query(expr)``: the
    instant vector's values by the ``account`` label ('' when the series has none)."""
    prometheus_port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        textwrap.dedent(
            f"""\
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: msgworker
                static_configs:
                  - targets: ["127.0.0.1:{port}"]
            """
        )
    )
    prometheus_log = (tmp_path / "prometheus.log").open("wb")
    prometheus = subprocess.Popen(  # noqa: S603
        [
            tool("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=prometheus_log,
    )
    api = f"http://127.0.0.1:{prometheus_port}/api/v1/query"

    def query(expr: str) -> dict[str, float]:
        try:
            result = httpx.get(api, params={"query": expr}, timeout=5).json()["data"]["result"]
        except (httpx.HTTPError, KeyError, ValueError):
            return {}
        return {r["metric"].get("account", ""): float(r["value"][1]) for r in result}

    try:
        yield query
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=20)
        prometheus_log.close()


def test_prometheus_scrapes_a_worker_and_reads_rate_limits_and_sends_back(
    redis_url, sandbox, runtime, tmp_path
):
    """A real Prometheus scraping a real worker reports the RATE_001 and OK counts the sandbox saw."""
    port = free_port()
    worker = start_worker(
        worker_env(redis_url, sandbox.url, metrics_port=str(port)),
        tmp_path / "w.log",
        concurrency=4,
    )
    try:
        with prometheus_scraping(port, tmp_path) as query:
            rate_limited = {
                "status": 429,
                "code": "RATE_001",
                "group": "TOO_MANY_REQUESTS",
                "params": {"limit_type": "sec", "retry_after": "1s"},
            }
            sandbox.script(rate_limited, rate_limited, rate_limited)
            ids = runtime.producer.enqueue_many([text(i) for i in range(30)])
            wait_for(
                lambda: all(runtime.jobs.get(i).state is JobState.SENT for i in ids),
                timeout_s=60,
                what="30 sends",
            )
            rate_expr = 'sum(msgworker_api_responses_total{code="RATE_001"})'
            ok_expr = 'sum(msgworker_api_responses_total{code="OK"})'
            wait_for(lambda: query(ok_expr) == {"": 30}, timeout_s=30, what="Prometheus: 30 OK")
            assert query(rate_expr) == {"": 3} == {"": sandbox.stats()["by_code"]["RATE_001"]}
            assert query(ok_expr) == {"": sandbox.stats()["accepted"]}
            assert query('up{job="msgworker"}') == {"": 1}
    finally:
        worker.stop()


def test_prometheus_tells_the_accounts_apart(redis_url, sandbox, tmp_path):
    """Two accounts on one worker, one with a key the Gateway refuses: Prometheus sees each
    account's sends, answers, halt and alert under its own label, and the sums by code across
    them; an account the deployment does not know never becomes a label."""
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(
        '[accounts.good]\napi_key_env = "GOOD_KEY"\n[accounts.revoked]\napi_key_env = "BAD_KEY"\n'
    )
    port = free_port()
    env = worker_env(
        redis_url,
        sandbox.url,
        metrics_port=str(port),
        accounts_file=str(accounts),
        halt_probe_interval_s="3600",  # no probe: every Gateway call counted is a delivery's
    )
    # Keys look like keys: every 8 characters of one are redacted wherever they appear, and a run
    # of zeros would match the sandbox's wamids (their serial is zero-padded).
    env |= {"GOOD_KEY": API_KEY, "BAD_KEY": "sk_revoked_5d7c1a9e3b"}
    worker = start_worker(env, tmp_path / "w.log", concurrency=4)
    settings = Settings(broker_url=redis_url, accounts_file=accounts, _env_file=None)
    runtime = Runtime(settings)
    try:
        with prometheus_scraping(port, tmp_path) as query:
            good = runtime.producer.enqueue_many(
                [{"message": text(i), "account": "good"} for i in range(20)]
            )
            runtime.producer.enqueue_many(
                [{"message": text(i), "account": "revoked"} for i in range(5)]
            )
            wait_for(
                lambda: all(runtime.jobs.get(i).state is JobState.SENT for i in good),
                timeout_s=60,
                what="the good account's 20 sends",
            )
            wait_for(lambda: runtime.switches.halted("revoked"), what="the revoked account halted")
            sent = 'sum by (account) (msgworker_jobs_total{outcome="sent"})'
            wait_for(lambda: query(sent).get("good") == 20, timeout_s=30, what="Prometheus: 20")
            assert query(sent) == {"good": 20, "revoked": 0}
            answers = "sum by (account, code) (msgworker_api_responses_total)"
            wait_for(lambda: "revoked" in query(answers), timeout_s=30, what="the AUTH_001 answer")
            every_answer = 'sum(msgworker_api_responses_total{code=~"OK|AUTH_001"})'
            assert query(every_answer) == {"": sandbox.stats()["requests"]}
            auth = 'sum by (account) (msgworker_api_responses_total{code="AUTH_001"})'
            assert set(query(auth)) == {"revoked"}
            halted = "max by (account) (msgworker_halted)"
            wait_for(lambda: query(halted) == {"good": 0, "revoked": 1}, what="the halt gauge")
            alerts = 'sum by (account) (msgworker_alerts_total{kind="halt"})'
            assert query(alerts) == {"good": 0, "revoked": 1}
            labelled = {"good", "revoked", UNKNOWN_ACCOUNT}
            assert set(query("sum by (account) (msgworker_jobs_total)")) <= labelled
    finally:
        runtime.close()
        worker.stop()


def test_metrics_answer_during_a_redis_outage_and_say_so(sandbox, tmp_path):
    """Redis down: /metrics still answers at once, with msgworker_redis_up 0 and the counters."""
    server = RedisServer(tmp_path)
    server.start()
    port = free_port()
    worker = start_worker(
        worker_env(server.url, sandbox.url, metrics_port=str(port)),
        tmp_path / "w.log",
        concurrency=2,
    )
    try:
        up = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert sample(up, "msgworker_redis_up") == 1
        server.stop()
        down = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert sample(down, "msgworker_redis_up") == 0
        assert "msgworker_jobs_total" in down
        assert "msgworker_queue_depth" not in down
    finally:
        worker.stop()
        server.stop()
