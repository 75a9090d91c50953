"""Gateway webhook throughput and latency on a real uvicorn (``msgworker serve``), with 0 lost.

Everything runs on this machine: a private redis-server, one ``msgworker serve`` process with
``WEBHOOK_SECRET`` set, and a real HTTP client with ``--connections`` keep-alive connections:
``wrk`` when installed (apt-get install wrk), else httpx on asyncio in this process.

- setup: ``--jobs`` jobs enqueued and recorded as sent (the worker's own script), each with its
  wamid indexed;
- baseline: ``GET /healthz`` requests/s on the same service in the same run;
- webhooks: ``POST /webhooks/gateway``, request i carrying ``delivered`` for job i;
- lost: afterwards every request the service answered 200 must show as a ``delivered`` job in
  Redis, and wrk must have counted no more requests than that.

    .venv/bin/python bench/webhooks.py [--seconds 5] [--connections 16] [--jobs 30000]

Targets: ≥ 1,000 webhook requests/s with p99 ≤ 50 ms, 0 events lost.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.serve import Service  # noqa: E402
from worker.dev.localredis import LocalRedis  # noqa: E402
from worker.store.claims import Execution  # noqa: E402
from worker.store.jobs import JobStore  # noqa: E402
from worker.store.keys import Keys  # noqa: E402
from worker.store.records import NewJob  # noqa: E402
from worker.store.transitions import Transitions  # noqa: E402

SECRET = "whsec_bench_0123456789abcdef"  # noqa: S105 - a bench secret
RPS_TARGET = 1000
P99_TARGET_MS = 50
T0 = 1_760_000_000
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}

# wrk builds request i's body itself: a status for job i (one wrk thread: one counter).
WRK_SCRIPT = """
local i = -1
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer %s"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  local body = string.format('{"object":"whatsapp_business_account","entry":[{"id":"b",' ..
    '"changes":[{"field":"messages","value":{"messaging_product":"whatsapp","statuses":' ..
    '[{"id":"wamid.bench%%08d","status":"delivered","timestamp":"%d","recipient_id":' ..
    '"905321234567"}]}}]}]}', i)
  return wrk.format(nil, nil, nil, body)
end
"""


def body(i: int) -> dict[str, object]:
    item = {
        "id": f"wamid.bench{i:08d}",
        "status": "delivered",
        "timestamp": str(T0),
        "recipient_id": "905321234567",
    }
    change = {"field": "messages", "value": {"messaging_product": "whatsapp", "statuses": [item]}}
    return {"object": "whatsapp_business_account", "entry": [{"id": "b", "changes": [change]}]}


def setup_jobs(url: str, count: int) -> None:
    """``count`` jobs enqueued and recorded as sent, as a worker records them."""
    client = redis.Redis.from_url(url, decode_responses=True)
    jobs = JobStore(client, Keys())
    transitions = Transitions(client, Keys(), retention_s=3600)
    now = time.time()
    message = {"to": "905321234567", "type": "text", "text": {"body": "bench"}}
    for start in range(0, count, 1000):
        batch = [
            NewJob(f"bench{i:08d}", "default", f"k{i}", message, now)
            for i in range(start, min(count, start + 1000))
        ]
        jobs.add(batch, now=now)
    for i in range(count):
        transitions.mark_sent(
            Execution(f"bench{i:08d}", 1, "bench"), f"wamid.bench{i:08d}", now=now
        )
    client.close()


def wrk(url: str, seconds: float, connections: int, script: str | None) -> tuple[int, float, float]:
    """Completed requests, p50 and p99 (ms), as wrk reports them."""
    args = [shutil.which("wrk") or "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    path = "/healthz"
    if script is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
            file.write(script)
        args += ["-s", file.name]
        path = "/webhooks/gateway"
    out = subprocess.run(  # noqa: S603 - wrk against our own server
        [*args, url + path], capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(out)
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    found = re.findall(r"\s(50|99)%\s+([\d.]+)(us|ms|s)\b", out)
    points = {q: float(v) * _UNITS[u] * 1000 for q, v, u in found}
    return done, points["50"], points["99"]


async def httpx_load(
    url: str, seconds: float, connections: int, webhook: bool
) -> tuple[int, float, float]:
    """The same with httpx on asyncio: completed requests, p50 and p99 (ms)."""
    latencies: list[float] = []
    counter = iter(range(10**9))
    headers = {"Authorization": f"Bearer {SECRET}"}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, headers=headers) as client:
        deadline = time.perf_counter() + seconds

        async def loop() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                if webhook:
                    answer = await client.post("/webhooks/gateway", json=body(next(counter)))
                else:
                    answer = await client.get("/healthz")
                answer.raise_for_status()
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(loop() for _ in range(connections)))
    latencies.sort()
    n = len(latencies)
    return n, latencies[n // 2] * 1000, latencies[min(n - 1, int(n * 0.99))] * 1000


def applied(url: str, jobs: int) -> int:
    """How many jobs show ``delivered`` in Redis."""
    client = redis.Redis.from_url(url, decode_responses=True)
    keys = Keys()
    found = 0
    for start in range(0, jobs, 1000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(jobs, start + 1000)):
            pipe.hget(keys.job(f"bench{i:08d}"), "delivery_status")
        found += sum(status == "delivered" for status in pipe.execute())
    client.close()
    return found


def answered_ok(url: str) -> int:
    """Webhook requests the service answered 200 with their status applied (its own count)."""
    text = httpx.get(f"{url}/metrics").text
    match = re.search(r'msgworker_webhook_requests_total\{result="ok"\} ([\d.e+]+)', text)
    return int(float(match.group(1))) if match else 0


def line(name: str, rps: float, figures: tuple[int, float, float]) -> None:
    p50, p99 = figures[1], figures[2]
    print(f"{name:30}{rps:8.0f} requests/s  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=30_000)
    parser.add_argument("--client", choices=["wrk", "httpx"], default=None)
    args = parser.parse_args(argv)
    args.client = args.client or ("wrk" if shutil.which("wrk") else "httpx")
    with tempfile.TemporaryDirectory() as tmp:
        server = LocalRedis(Path(tmp))
        server.start()
        service = Service(Path(tmp), broker_url=server.url, webhook_secret=SECRET).start()
        try:
            return run(args, service.url, server.url)
        finally:
            service.stop()
            server.stop()


def run(args: argparse.Namespace, url: str, redis_url: str) -> int:
    started = time.perf_counter()
    setup_jobs(redis_url, args.jobs)
    print(f"setup: {args.jobs} sent jobs in {time.perf_counter() - started:.1f} s")
    seconds, conns = args.seconds, args.connections
    if args.client == "wrk":
        health = wrk(url, seconds, conns, None)
        hooks = wrk(url, seconds, conns, WRK_SCRIPT % (SECRET, T0))
    else:
        health = asyncio.run(httpx_load(url, seconds, conns, webhook=False))
        hooks = asyncio.run(httpx_load(url, seconds, conns, webhook=True))
    if hooks[0] > args.jobs:
        raise SystemExit(f"more requests ({hooks[0]}) than jobs: run with --jobs {hooks[0] * 2}")
    # Every request answered 200 must show in Redis (wrk may end with a few answered it did not
    # count, and its first generated body is used to probe the script, never sent).
    ok = answered_ok(url)
    found = applied(redis_url, args.jobs)
    missing = max(0, ok - found) + max(0, hooks[0] - ok)
    health_rps, hooks_rps = health[0] / seconds, hooks[0] / seconds
    print(f"client {args.client}, {conns} connections, {seconds:g} s per figure")
    line("baseline GET /healthz", health_rps, health)
    line("POST /webhooks/gateway", hooks_rps, hooks)
    ratio = hooks[2] / max(health[2], 1e-9)
    print(f"{'webhooks / baseline':30}{hooks_rps / health_rps:8.2f}x requests/s  {ratio:.2f}x p99")
    print(f"statuses applied              {found} in Redis, {ok} answered 200 ({missing} lost)")
    checks = {
        f">= {RPS_TARGET} requests/s": hooks_rps >= RPS_TARGET,
        f"p99 <= {P99_TARGET_MS} ms": hooks[2] <= P99_TARGET_MS,
        "0 lost": missing == 0,
    }
    for name, ok in checks.items():
        print(f"target {name}: {'met' if ok else 'MISSED'}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
