"""``msgworker demo``: the Gateway client and the routing table against the local sandbox.

Starts the sandbox on a free port, sends a handful of messages that meet each kind of answer,
and prints what msgworker decides for each. (The full pipeline demo arrives with the worker.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import httpx

from worker.errors import GatewayError
from worker.gateway import GatewayClient, make_http_client
from worker.models import message_body, parse_message
from worker.outcome import Outcome
from worker.routing import Attempt, Decision, Policy, decide, load_routing_table
from worker.sandbox import RunningSandbox, SandboxConfig

DEMO_KEY = "sk_demo_0123456789"


@dataclass(frozen=True)
class Step:
    title: str
    script: list[dict[str, Any]] | None = None
    api_key: str = DEMO_KEY


STEPS = [
    Step("plain success"),
    Step(
        "rate limited (RATE_001, retry_after '1 seconds')",
        [
            {
                "status": 429,
                "code": "RATE_001",
                "group": "TOO_MANY_REQUESTS",
                "params": {"limit_type": "sec", "retry_after": "1 seconds"},
            }
        ],
    ),
    Step("proxy 502 with an HTML page", [{"status": 502, "raw_body": "<html>502</html>"}]),
    Step(
        "auth service hiccup (AUTH_004)",
        [{"status": 500, "code": "AUTH_004", "group": "INTERNAL_ERROR"}],
    ),
    Step("invalid recipient (GW_001)", [{"status": 400, "code": "GW_001"}]),
    Step(
        "balance ran out (BILL_001)",
        [{"status": 402, "code": "BILL_001", "group": "PAYMENT_REQUIRED"}],
    ),
    Step("connection dropped after the request", [{"drop": True}]),
    Step("wrong API key (AUTH_001)", api_key="sk_wrong_key_123456"),
]


def _describe(decision: Decision) -> str:
    if decision.reason is not None:
        return f"{decision.action} ({decision.reason})"
    if decision.delay_s:
        return f"{decision.action} in {decision.delay_s:.2f}s"
    return str(decision.action)


def run_demo() -> int:
    """Run every step; print the Gateway's answer and msgworker's decision for each."""
    policy = Policy(table=load_routing_table())
    rng = random.Random(7)  # noqa: S311 - jitter for display
    body = message_body(
        parse_message(
            {"to": "+90 532 123 45 67", "type": "text", "text": {"body": "Your code is 4242"}}
        )
    )
    with (
        RunningSandbox(SandboxConfig(api_keys=(DEMO_KEY,))) as sandbox,
        make_http_client(timeout_s=5) as http,
    ):
        print(f"sandbox gateway at {sandbox.url}\n")
        print(f"{'situation':<48} {'answer':<22} decision")
        for step in STEPS:
            if step.script:
                httpx.post(
                    f"{sandbox.url}/sandbox/script", json={"answers": step.script}
                ).raise_for_status()
            client = GatewayClient(http, base_url=sandbox.url, api_key=step.api_key, sandbox=True)
            try:
                answer = f"OK {client.send(body).wamid[:14]}"
                outcome = Outcome.ok()
            except GatewayError as error:
                answer = f"{error.code} ({error.status or 'no answer'})"
                outcome = error.outcome
            decision = decide(outcome, Attempt(calls=1), policy, rng=rng)
            print(f"{step.title:<48} {answer:<22} {_describe(decision)}")
        stats = httpx.get(f"{sandbox.url}/sandbox/stats").json()
        print(f"\nsandbox accepted {stats['accepted']} of {stats['requests']} requests")
    return 0
