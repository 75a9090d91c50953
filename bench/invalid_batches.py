"""/healthz latency while clients post 15 MB invalid batches, on a real ``msgworker serve``.

A private redis-server and one ``msgworker serve`` process; ``--clients`` threads each post an
invalid batch of about ``--megabytes`` MB to ``POST /v1/messages/batch`` in a loop, while one
more asks ``GET /healthz`` every 10 ms. Two shapes of batch:

- ``spread`` (the default): every item has bad fields (900 items, as a careless or hostile
  client sends them); the answer's error list is the largest;
- ``late``: valid items with long escaped texts and one bad item last, so every item must be
  validated before the batch is refused (the most work a refused batch can cost).

    .venv/bin/python bench/invalid_batches.py [--seconds 10] [--clients 4] [--shape spread]

Target: /healthz p99 <= 100 ms while the batches are refused.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from tests.support.serve import TOKEN, Service  # noqa: E402
from worker.dev.localredis import LocalRedis  # noqa: E402

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
HEALTH_P99_TARGET_MS = 100
HEALTH_EVERY_S = 0.01
MB = 1_000_000


def invalid_batch(shape: str, megabytes: float) -> bytes:
    """A JSON batch of about ``megabytes`` MB that the API refuses (see the module's doc)."""
    size = int(megabytes * MB)
    if shape == "spread":
        items = 900
        text = "x" * (size // items - 80)  # over the text's length limit: one error more
        item = {"to": "not a phone number", "type": "text", "text": {"body": text}}
        return json.dumps({"messages": [item] * items}).encode()
    text = "\u00e7" * 4000  # 6 bytes each once escaped, within the text's limit
    item: dict[str, Any] = {"to": "+90 532 123 45 67", "type": "text", "text": {"body": text}}
    valid = len(json.dumps(item).encode())
    items = [item] * min(999, size // valid) + [{"to": "not a phone number", "type": "text"}]
    return json.dumps({"messages": items}).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--megabytes", type=float, default=15.0)
    parser.add_argument("--shape", choices=["spread", "late"], default="spread")
    args = parser.parse_args(argv)
    body = invalid_batch(args.shape, args.megabytes)
    with tempfile.TemporaryDirectory() as tmp:
        redis_server = LocalRedis(Path(tmp))
        redis_server.start()
        service = Service(Path(tmp), broker_url=redis_server.url, ingest_tokens=TOKEN).start()
        try:
            return _run(args, service.url, body)
        finally:
            service.stop()
            redis_server.stop()


def _health_latencies(health: httpx.Client, seconds: float) -> list[float]:
    """Each /healthz answer's latency (s), one every ``HEALTH_EVERY_S`` for ``seconds``."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        health.get("/healthz").raise_for_status()
        latencies.append(time.perf_counter() - started)
        time.sleep(HEALTH_EVERY_S)
    return latencies


def _p99_ms(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98] * 1000


def _run(args: argparse.Namespace, url: str, body: bytes) -> int:
    stop = threading.Event()
    refused: list[tuple[float, int]] = []  # each batch: seconds, size of the answer

    def post() -> None:
        with httpx.Client(base_url=url, timeout=60, headers=AUTH) as client:
            while not stop.is_set():
                started = time.perf_counter()
                answer = client.post("/v1/messages/batch", content=body)
                if answer.status_code != 422:
                    raise RuntimeError(f"batch answered {answer.status_code}: {answer.text[:200]}")
                refused.append((time.perf_counter() - started, len(answer.content)))

    with httpx.Client(base_url=url, timeout=60) as health:
        quiet = _health_latencies(health, args.seconds / 2)
        posters = [threading.Thread(target=post, daemon=True) for _ in range(args.clients)]
        for thread in posters:
            thread.start()
        latencies = _health_latencies(health, args.seconds)
        stop.set()
        for thread in posters:
            thread.join()
    p99 = _p99_ms(latencies)
    print(f"machine: python {sys.version.split()[0]}; server, Redis and clients share it")
    print(
        f"GET /healthz alone: {len(quiet)} requests, p50 {statistics.median(quiet) * 1000:.1f} ms,"
        f" p99 {_p99_ms(quiet):.1f} ms, max {max(quiet) * 1000:.1f} ms"
    )
    print(
        f"{args.clients} clients posting {args.shape} invalid batches of {len(body) / MB:.1f} MB"
        f" for {args.seconds:g} s: {len(refused)} refused (422),"
        f" p50 {statistics.median(t for t, _ in refused):.2f} s each,"
        f" answers up to {max(n for _, n in refused) / 1000:.1f} kB"
    )
    print(
        f"GET /healthz meanwhile: {len(latencies)} requests, p50"
        f" {statistics.median(latencies) * 1000:.1f} ms, p99 {p99:.1f} ms,"
        f" max {max(latencies) * 1000:.1f} ms"
    )
    met = p99 <= HEALTH_P99_TARGET_MS
    print(f"target /healthz p99 <= {HEALTH_P99_TARGET_MS} ms: {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
