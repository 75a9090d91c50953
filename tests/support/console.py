"""The web console under test: a serve process with a password, logging in, parked jobs."""

from __future__ import annotations

import re
import time

import httpx

from worker.store.jobs import Execution
from worker.store.ratelimit import RateLimit

PASSWORD = "night-shift-password-42"  # noqa: S105 - a test password
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def login(http: httpx.Client, password: str = PASSWORD) -> str:
    """Log in; returns the session's CSRF token (read from the overview's forms)."""
    answer = http.post("/console/login", data={"password": password})
    assert answer.status_code == 303, answer.text
    overview = http.get("/console")
    assert overview.status_code == 200, overview.text
    return csrf_of(overview.text)


def park(runtime, job_id: str, *, code: str = "BILL_001", reason: str = "billing") -> None:
    """Park a queued job the way a worker does (claim, then settle with a dead letter)."""
    job = runtime.jobs.get(job_id)
    execution = Execution(job_id, job.gen, holder="console-test")
    claim = runtime.jobs.begin(
        execution, now=time.time(), lease_s=30, probe_interval_s=30, rate=RateLimit(1000, 100_000)
    )
    assert claim.verdict == "go"
    record = {
        "id": job_id,
        "idempotency_key": job.key,
        "account": job.account,
        "message": job.message,
        "code": code,
        "group": None,
        "status": 402,
        "description": "",
        "params": {},
        "reason": reason,
        "attempts": 1,
        "enqueued_at": job.enqueued_at,
        "parked_at": time.time(),
        "expires_at": job.expires_at,
    }
    applied, _ = runtime.jobs.park(
        execution, now=time.time(), code=code, reason=reason, record=record
    )
    assert applied
