"""HTTP ingest throughput and latency on a real uvicorn (``msgworker serve``), with baselines.

Everything runs on this machine: a private redis-server, one ``msgworker serve`` process, and
a real HTTP client with ``--connections`` keep-alive connections: ``wrk`` when it is installed
(apt-get install wrk; a C client that leaves the CPU to the server), else httpx on asyncio in
this process (which then costs as much CPU as the server, and shows it in the figures):

- baseline: ``GET /healthz`` requests/s (the service and client with no work at all);
- single: ``POST /v1/messages`` requests/s and p50/p99 latency;
- batch: ``POST /v1/messages/batch`` of ``--batch`` messages, messages/s;
- Python: ``enqueue_many`` (blocking) and ``enqueue_many_async`` in batches of ``--batch``.

Each figure is printed with its ratio to the baseline measured in the same run.

    .venv/bin/python bench/ingest.py [--seconds 5] [--connections 16] [--batch 1000]

Targets: batch ≥ 10,000 messages/s; single ≥ 1,000 requests/s with p99 ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from tests.support.serve import TOKEN, Service  # noqa: E402
from worker.dev.localredis import LocalRedis  # noqa: E402
from worker.producer_async import AsyncJobStore, AsyncProducer  # noqa: E402
from worker.service.runtime import Runtime  # noqa: E402
from worker.settings import Settings  # noqa: E402
from worker.store.connect import connect_async_fail_fast  # noqa: E402
from worker.store.keys import Keys  # noqa: E402

PAYLOAD: dict[str, Any] = {"to": "+90 532 123 45 67", "type": "text", "text": {"body": "bench"}}
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SINGLE_RPS_TARGET = 1000
SINGLE_P99_TARGET_MS = 50
BATCH_MPS_TARGET = 10_000


async def _load(
    url: str, seconds: float, connections: int, method: str, path: str, body: Any
) -> tuple[int, list[float]]:
    """Requests done and their latencies (s), ``connections`` loops for ``seconds``."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30, headers=AUTH) as client:
        deadline = time.perf_counter() + seconds

        async def loop() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                answer = await client.request(method, path, json=body)
                latencies.append(time.perf_counter() - started)
                errors += answer.status_code >= 300

        await asyncio.gather(*(loop() for _ in range(connections)))
    if errors:
        raise RuntimeError(f"{errors} requests to {path} failed")
    return len(latencies), latencies


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def _wrk(
    url: str, seconds: float, connections: int, method: str, path: str, body: Any
) -> tuple[int, list[float]]:
    """wrk's request count, and its p50/p99 as a two-point latency list (s)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f"wrk.method = {json.dumps(method)}\n")
        script.write(f'wrk.headers["Authorization"] = {json.dumps(AUTH["Authorization"])}\n')
        if body is not None:
            script.write('wrk.headers["Content-Type"] = "application/json"\n')
            script.write(f"wrk.body = {json.dumps(json.dumps(body))}\n")
    wrk = shutil.which("wrk") or "wrk"
    done = subprocess.run(  # noqa: S603 - wrk against our own server
        [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", script.name, url + path],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    )  # fmt: skip
    Path(script.name).unlink()
    out = done.stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    points = {
        q: float(v) * _UNITS[u] for q, v, u in re.findall(r"\s(50|99)%\s+([\d.]+)(us|ms|s)\b", out)
    }
    return requests, [points["50"], points["99"]]


def _p(latencies: list[float], q: float) -> float:
    if len(latencies) == 2:  # wrk's p50 and p99
        return latencies[0 if q == 0.5 else 1] * 1000
    return (
        statistics.quantiles(latencies, n=1000)[int(q * 1000) - 1] * 1000
        if len(latencies) > 1
        else 0.0
    )


def _python_blocking(url: str, batch: int, seconds: float) -> float:
    runtime = Runtime(Settings(broker_url=url, _env_file=None))
    items = [PAYLOAD] * batch
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        runtime.producer.enqueue_many(items)
        done += batch
    rate = done / (time.perf_counter() - started)
    runtime.close()
    return rate


async def _python_async(url: str, batch: int, seconds: float) -> float:
    client = connect_async_fail_fast(url, timeout_s=5)
    producer = AsyncProducer(
        AsyncJobStore(client, Keys()), accounts=frozenset({"default"}), redis_timeout_s=5
    )
    items = [PAYLOAD] * batch
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        await producer.enqueue_many(items)
        done += batch
    rate = done / (time.perf_counter() - started)
    await client.aclose()
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--client", choices=["wrk", "httpx"], default=None)
    args = parser.parse_args(argv)
    args.client = args.client or ("wrk" if shutil.which("wrk") else "httpx")
    with tempfile.TemporaryDirectory() as tmp:
        redis_server = LocalRedis(Path(tmp))
        redis_server.start()
        service = Service(Path(tmp), broker_url=redis_server.url, ingest_tokens=TOKEN).start()
        try:
            return _run(args, service.url, redis_server)
        finally:
            service.stop()
            redis_server.stop()


def _run(args: argparse.Namespace, url: str, redis_server: LocalRedis) -> int:
    seconds, conns, batch = args.seconds, args.connections, args.batch

    def load(
        seconds: float, connections: int, method: str, path: str, body: Any
    ) -> tuple[int, list[float]]:
        if args.client == "wrk":
            return _wrk(url, seconds, connections, method, path, body)
        return asyncio.run(_load(url, seconds, connections, method, path, body))

    load(1, conns, "POST", "/v1/messages", PAYLOAD)  # warm up
    health, health_lat = load(seconds, conns, "GET", "/healthz", None)
    single, single_lat = load(seconds, conns, "POST", "/v1/messages", PAYLOAD)
    body = {"messages": [PAYLOAD] * batch}
    batches, batch_lat = load(seconds, max(2, conns // 4), "POST", "/v1/messages/batch", body)
    blocking = _python_blocking(redis_server.url, batch, seconds)
    nonblocking = asyncio.run(_python_async(redis_server.url, batch, seconds))

    health_rps, single_rps = health / seconds, single / seconds
    batch_mps = batches * batch / seconds
    print(f"machine: python {sys.version.split()[0]}; server, Redis and client share it")
    print(f"client {args.client}, {conns} connections, {seconds:g} s per figure, batch {batch}")
    print(
        f"baseline GET /healthz        {health_rps:10.0f} requests/s   p99 {_p(health_lat, 0.99):6.1f} ms"
    )
    print(
        f"single POST /v1/messages     {single_rps:10.0f} requests/s   p50 {_p(single_lat, 0.5):6.1f} ms"
        f"  p99 {_p(single_lat, 0.99):6.1f} ms   {single_rps / health_rps:.2f}x baseline"
    )
    print(
        f"batch POST /v1/messages/batch {batch_mps:9.0f} messages/s   p99 {_p(batch_lat, 0.99):6.1f} ms"
        f" per batch   {batch_mps / health_rps:.2f}x baseline requests/s"
    )
    print(f"enqueue_many (blocking)      {blocking:10.0f} messages/s")
    print(
        f"enqueue_many_async           {nonblocking:10.0f} messages/s   {nonblocking / blocking:.2f}x enqueue_many"
    )
    print(f"HTTP batch / enqueue_many    {batch_mps / blocking:10.2f}x")
    checks = {
        f"batch >= {BATCH_MPS_TARGET}/s": batch_mps >= BATCH_MPS_TARGET,
        f"single >= {SINGLE_RPS_TARGET}/s": single_rps >= SINGLE_RPS_TARGET,
        f"single p99 <= {SINGLE_P99_TARGET_MS} ms": _p(single_lat, 0.99) <= SINGLE_P99_TARGET_MS,
    }
    for name, ok in checks.items():
        print(f"target {name}: {'met' if ok else 'MISSED'}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
