"""``msgworker demo``: the whole product working on this machine, then a summary.

Uses the Redis at BROKER_URL when it answers (under a prefix and queue of its own, removed
afterwards), else a private redis-server; starts the sandbox Gateway and a real worker; sends
a mix that meets every kind of answer, then two more accounts with keys of their own, one
halted by the Gateway and healing itself while the other keeps sending; prints what happened;
then WhatsApp's own limits (one recipient paced, a paused template held and released); stops
what it started.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from worker.dev.brands import (
    BRAND_A_KEY,
    BRAND_B_KEY,
    BRAND_RATE_PER_SEC,
    Brands,
    set_up_brands,
)
from worker.dev.localredis import free_port
from worker.dev.stage import (
    answers,
    clean_up,
    redis_for_demo,
    say,
    start_serve,
    start_worker,
    stop_worker,
    wait_until,
)
from worker.dev.whatsapp_scene import DEMO_PAIR_INTERVAL_S, show_whatsapp, template_of
from worker.sandbox.server import RunningSandbox, SandboxConfig
from worker.service.runtime import Runtime
from worker.settings import Settings, get_settings
from worker.store.records import Job
from worker.store.states import FINISHED, JobState

DEMO_KEY = "sk_demo_7c1e0a9b3f"
HALT_PROBE_INTERVAL_S = 3
DEMO_WEBHOOK_SECRET = "whsec_demo_5d2f8a1c9e"  # noqa: S105 - the demo's own, on 127.0.0.1
UNREACHABLE = "905329999999"  # the sandbox answers its messages' delivery with failed 131026


# Each demo message goes to a number of its own, as a campaign's do: pair pacing (one message a
# recipient every PAIR_INTERVAL_S) holds none of them back.
_RECIPIENTS = itertools.count(1)


def text(label: str, n: int) -> dict[str, Any]:
    to = f"+90 532 {next(_RECIPIENTS):07d}"
    return {"to": to, "type": "text", "text": {"body": f"{label} #{n}"}}


class Demo:
    def __init__(
        self, runtime: Runtime, sandbox_url: str, env: dict[str, str], brands: Brands
    ) -> None:
        self.runtime = runtime
        self.env = env
        self.brands = brands
        self.sandbox = httpx.Client(base_url=sandbox_url, timeout=10)
        self.ids: list[str] = []

    def enqueue(self, label: str, count: int, account: str | None = None) -> list[str]:
        messages = [text(label, n) for n in range(count)]
        items = (
            messages if account is None else [{"message": m, "account": account} for m in messages]
        )
        ids = self.runtime.producer.enqueue_many(items)
        self.ids += ids
        return ids

    def job(self, job_id: str) -> Job:
        found = self.runtime.jobs.get(job_id)
        if found is None:
            raise LookupError(f"demo: job {job_id} vanished")
        return found

    def states(self, ids: list[str]) -> Counter[str]:
        return Counter(str(job.state) for i in ids if (job := self.runtime.jobs.get(i)))

    def wait_states(
        self, ids: list[str], *, what: str, states: frozenset[JobState] = FINISHED
    ) -> None:
        wait_until(
            lambda: all((j := self.runtime.jobs.get(i)) and j.state in states for i in ids),
            what=what,
        )

    def admin(self, path: str, body: dict[str, Any]) -> None:
        self.sandbox.post(path, json=body).raise_for_status()

    def run(self) -> None:
        """The nine scenes, one after the other."""
        self.plain_sends()
        self.delivery()
        self.rate_limited()
        self.retried()
        self.invalid_recipient()
        self.balance_runs_out()
        self.key_revoked()
        self.two_accounts()
        self.whatsapp()

    def plain_sends(self) -> None:
        say("1. 20 messages, plain sends")
        ids = self.enqueue("welcome", 20)
        self.wait_states(ids, what="plain sends")
        say(f"   {dict(self.states(ids))}")

    def delivery(self) -> None:
        say("1b. delivery status: the sandbox posts WhatsApp's webhooks to msgworker serve")
        ids = self.enqueue("delivery", 3)
        message = {"to": UNREACHABLE, "type": "text", "text": {"body": "to nowhere"}}
        lost = self.runtime.producer.enqueue(message)
        self.ids.append(lost)
        wait_until(
            lambda: (
                all((j := self.job(i)).receipt and j.receipt.status == "read" for i in ids)
                and self.job(lost).state is JobState.PARKED
            ),
            what="delivery statuses",
            timeout_s=30,
        )
        say(f"   {len(ids)} jobs delivered, then read (payload dropped once read)")
        parked = self.job(lost)
        say(f"   {UNREACHABLE[:5]}*****{UNREACHABLE[-2:]}: {parked.state} {parked.last_code}")
        listed = subprocess.run(  # noqa: S603 - our own command
            [
                str(Path(sys.executable).with_name("msgworker")),
                "dlq",
                "list",
                "--code",
                "WA_131026",
            ],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        for line in listed.stdout.splitlines():
            say(f"   dlq list | {line}")
        self.runtime.dead_letters.purge([lost])  # the later scenes count their own dead letters

    def rate_limited(self) -> None:
        say("2. The Gateway answers RATE_001 (retry_after '2s'): every worker waits 2 s")
        rate = {"status": 429, "code": "RATE_001", "group": "TOO_MANY_REQUESTS"}
        self.admin(
            "/sandbox/script",
            {"answers": [{**rate, "params": {"limit_type": "sec", "retry_after": "2s"}}]},
        )
        started = time.monotonic()
        ids = self.enqueue("promo", 10)
        self.wait_states(ids, what="the rate-limited batch")
        say(f"   all 10 sent after {time.monotonic() - started:.1f} s; no attempt used by the 429")

    def retried(self) -> None:
        say("3. Two 502s with an HTML page, then success: backoff with full jitter")
        html = {
            "status": 502,
            "raw_body": "<html>502 Bad Gateway</html>",
            "content_type": "text/html",
        }
        self.admin("/sandbox/script", {"answers": [html, html]})
        (job_id,) = self.enqueue("receipt", 1)
        self.wait_states([job_id], what="the retried message")
        job = self.job(job_id)
        delays = [e["delay_s"] for e in job.history if e.get("action") == "backoff"]
        say(f"   {job.state} after {job.attempts} attempts; backoff delays {delays}")

    def invalid_recipient(self) -> None:
        say("4. GW_001 (invalid recipient): parked at once, no retry")
        self.admin("/sandbox/script", {"answers": [{"status": 400, "code": "GW_001"}]})
        (job_id,) = self.enqueue("typo", 1)
        self.wait_states([job_id], what="the invalid recipient")
        say(f"   {self.job(job_id).state} with {self.job(job_id).last_code}")

    def balance_runs_out(self) -> None:
        say("5. The balance runs out (BILL_001): park, one alert, the breaker spares the Gateway")
        self.admin("/sandbox/config", {"balance": 0.0})
        before = self.sandbox.get("/sandbox/stats").json()["requests"]
        ids = self.enqueue("invoice", 30)
        self.wait_states(ids, what="the billing episode")
        calls = self.sandbox.get("/sandbox/stats").json()["requests"] - before
        breaker = self.runtime.switches.breaker("default")
        say(
            f"   {dict(self.states(ids))}; {calls} Gateway calls for 30 jobs; "
            f"breaker {'open' if breaker else 'closed'}"
        )
        say("   top-up, then: msgworker dlq replay --code BILL_001")
        self.admin("/sandbox/topup", {"amount": 100.0})
        dead = [r.id for r in self.runtime.dead_letters.select(_billing())]
        report = self.runtime.dead_letters.replay(dead, rate_per_s=40)
        self.wait_states(ids, what="the replay", states=frozenset({JobState.SENT}))
        say(f"   replayed {report.replayed}: {dict(self.states(ids))}; breaker closed")

    def key_revoked(self) -> None:
        say("6. The key is revoked (AUTH_001): every worker halts; jobs wait, none is lost")
        self.admin(
            "/sandbox/script",
            {"answers": [{"status": 401, "code": "AUTH_001", "group": "UNAUTHORIZED"}]},
        )
        ids = self.enqueue("reminder", 10)
        wait_until(lambda: self.runtime.switches.halted("default") is not None, what="the halt")
        self.wait_states(
            ids,
            what="the held jobs",
            states=frozenset({JobState.HELD, JobState.QUEUED, JobState.SENT}),
        )
        time.sleep(0.5)
        halt = self.runtime.switches.halted("default")
        say(f"   halted ({halt.code if halt else '?'}): {dict(self.states(ids))}")
        say("   credentials fixed, then: msgworker resume")
        released = self.runtime.switches.resume("default")
        self.wait_states(ids, what="the resumed jobs")
        say(f"   {released} released: {dict(self.states(ids))}")

    def two_accounts(self) -> None:
        say(
            f"7. Two brands, each with its own key and {BRAND_RATE_PER_SEC}/s: brand_a's key is "
            "revoked (AUTH_001), brand_b's works"
        )
        switches = self.runtime.switches
        held = self.enqueue("brand_a order", 10, account="brand_a")
        sending = self.enqueue("brand_b offer", 40, account="brand_b")
        wait_until(lambda: switches.halted("brand_a") is not None, what="brand_a's halt")
        self.wait_states(sending, what="brand_b's sends", states=frozenset({JobState.SENT}))
        halt = switches.halted("brand_a")
        who = "the operator" if halt is None or halt.by_operator else "the Gateway"
        say(
            f"   brand_a halted by {who} ({halt.code if halt else '?'}), "
            f"{switches.held_count('brand_a')} held; brand_b sent {len(sending)} meanwhile, "
            f"{switches.held_count('brand_b')} held"
        )
        self.brands.key_file.write_text(BRAND_A_KEY + "\n")
        rotated = time.monotonic()
        say(
            f"   brand_a's key file rewritten (no restart, no resume): probed every "
            f"{HALT_PROBE_INTERVAL_S} s with is_fake=true"
        )
        wait_until(lambda: switches.halted("brand_a") is None, what="brand_a healing itself")
        healed_s = time.monotonic() - rotated
        self.wait_states(held, what="brand_a's held jobs", states=frozenset({JobState.SENT}))
        say(f"   brand_a resumed by itself {healed_s:.1f} s later: {dict(self.states(held))}")
        stats = self.sandbox.get("/sandbox/stats").json()["by_key"]
        for account, label in self.brands.key_labels.items():
            say(f"   the Gateway's answers to {account}'s key: {stats.get(label, {})}")

    def whatsapp(self) -> None:
        show_whatsapp(self)

    def summary(self, metrics_url: str) -> None:
        jobs = [j for i in self.ids if (j := self.runtime.jobs.get(i))]
        stats = self.sandbox.get("/sandbox/stats").json()
        # A probe (is_fake=true) carries a held job's payload but is never delivered; the brands
        # send for real (sandbox = false), so their fake messages are the probes. A message
        # WhatsApp failed (a paused template, an unreachable number) reached no one: sent again
        # once it can go, it is no duplicate.
        brands = set(self.brands.key_labels.values())
        delivered = Counter(
            _label(m)
            for m in self.messages()
            if not (m["fake"] and m["key_label"] in brands) and m["meta_error"] is None
        )
        say()
        say("Summary")
        say(f"  jobs: {len(jobs)}   by state: {dict(Counter(str(j.state) for j in jobs))}")
        say(f"  last codes seen: {dict(Counter(j.last_code or '-' for j in jobs))}")
        say(f"  Gateway answers: {stats['by_code']}")
        say(f"  dead letters: {self.runtime.dead_letters.counts()}")
        twice = sum(1 for n in delivered.values() if n > 1)
        say(f"  messages WhatsApp delivered: {sum(delivered.values())}, sent twice: {twice}")
        say("  metrics (the lines of /metrics above 0, labelled by account):")
        body = httpx.get(metrics_url, timeout=5).text
        wanted = ("msgworker_api_responses_total{", "msgworker_jobs_total{", "msgworker_dlq_jobs{")
        for line in body.splitlines():
            if line.startswith(wanted) and not line.endswith(" 0.0"):
                say(f"    {line}")

    def messages(self) -> list[dict[str, Any]]:
        return list(
            self.sandbox.get("/sandbox/messages", params={"limit": 10000}).json()["messages"]
        )


def _label(message: dict[str, Any]) -> str:
    """What tells the demo's messages apart: a text's body, a template's name and recipient."""
    body = message["body"]
    text_ = body.get("text")
    if isinstance(text_, dict):
        return str(text_.get("body"))
    return f"{template_of(message)} to {body.get('to')}"


def _billing() -> Any:
    from worker.store.deadletters import Selection  # noqa: PLC0415

    return Selection(code="BILL_001")


def run_demo() -> int:
    settings = get_settings()
    run_id = uuid.uuid4().hex[:8]
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="msgworker-demo-")))
        redis_url, where = stack.enter_context(redis_for_demo(settings, workdir))
        serve_port = free_port()
        sandbox = stack.enter_context(RunningSandbox(_sandbox_config(serve_port)))
        brands = set_up_brands(sandbox.url, workdir)
        metrics_port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MSGWORKER_")},
            "MSGWORKER_BROKER_URL": redis_url,
            "MSGWORKER_REDIS_PREFIX": f"msgworker-demo-{run_id}:",
            "MSGWORKER_QUEUE": f"msgworker-demo-{run_id}",
            "MSGWORKER_API_BASE_URL": sandbox.url,
            "MSGWORKER_API_KEY": DEMO_KEY,
            "MSGWORKER_SANDBOX": "true",
            "MSGWORKER_METRICS_PORT": str(metrics_port),
            "MSGWORKER_BACKOFF_BASE_S": "0.5",
            "MSGWORKER_LOG_FORMAT": "json",
            "MSGWORKER_SERVE_PORT": str(serve_port),
            "MSGWORKER_SERVE_HOST": "127.0.0.1",
            "MSGWORKER_WEBHOOK_SECRET": DEMO_WEBHOOK_SECRET,
            "MSGWORKER_ACCOUNTS_FILE": str(brands.accounts_file),
            "MSGWORKER_HALT_PROBE_INTERVAL_S": str(HALT_PROBE_INTERVAL_S),
            "MSGWORKER_PAIR_INTERVAL_S": str(DEMO_PAIR_INTERVAL_S),
            "DEMO_BRAND_B_KEY": BRAND_B_KEY,
        }
        say(f"msgworker demo: Redis is {where}; sandbox Gateway at {sandbox.url}")
        log_path = workdir / "worker.log"
        worker = start_worker(env, log_path)
        stack.callback(stop_worker, worker)
        stack.callback(stop_worker, start_serve(env, workdir / "serve.log"))
        runtime = Runtime(
            Settings(
                broker_url=redis_url,
                redis_prefix=env["MSGWORKER_REDIS_PREFIX"],
                queue=env["MSGWORKER_QUEUE"],
                accounts_file=brands.accounts_file,
                _env_file=None,
            )
        )
        stack.callback(clean_up, runtime)
        wait_until(
            lambda: " ready." in log_path.read_text(errors="replace"),
            what="the worker",
            timeout_s=30,
        )
        wait_until(lambda: answers(f"http://127.0.0.1:{serve_port}/healthz"), what="serve")
        say(f"worker started (threads pool), metrics on http://127.0.0.1:{metrics_port}/metrics")
        say(f"msgworker serve on http://127.0.0.1:{serve_port} (webhooks on)")
        say()
        demo = Demo(runtime, sandbox.url, env, brands)
        demo.run()
        demo.summary(f"http://127.0.0.1:{metrics_port}/metrics")
    say("\neverything the demo started is stopped")
    return 0


def _sandbox_config(serve_port: int) -> SandboxConfig:
    return SandboxConfig(
        api_keys=(DEMO_KEY,),
        latency_ms=20,
        webhook_url=f"http://127.0.0.1:{serve_port}/webhooks/gateway",
        webhook_secret=DEMO_WEBHOOK_SECRET,
        webhook_delivered_s=0.3,
        webhook_read_s=0.8,
        failing_recipients=(UNREACHABLE,),
    )
