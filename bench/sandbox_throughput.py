"""Sandbox gateway throughput: successes/s flat out, and sends/s with 300 ms answers.

The second run keeps ~300 requests in flight against answers that each take 300 ms (a slow
Gateway); the ideal is 1,000 sends/s and the printed ratio says how close the sandbox gets.
Clients are plain threads with one keep-alive httpx.Client each: httpx.AsyncClient's pool
spends its time in O(n^2) bookkeeping past a few dozen connections and would measure itself.

    .venv/bin/python bench/sandbox_throughput.py [--seconds 5] [--procs 2] [--threads 4]

The sandbox runs in its own process (as `msgworker sandbox` would), the clients in others,
so neither steals the other's GIL.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk_sandbox"
HEADERS = {"Authorization": f"Bearer {KEY}"}
MESSAGE = {
    "messaging_product": "whatsapp",
    "to": "905321234567",
    "type": "text",
    "text": {"body": "benchmark"},
}
UNLIMITED = 10**9
# One TLS context for every client: building one per client (httpx's default) costs ~20 ms
# of CPU each, seconds for 300 clients, all inside the measured window.
_TLS = ssl.create_default_context()
SERVE = (
    "import sys; from worker.sandbox.server import SandboxConfig, serve; "
    f"serve(SandboxConfig(rate_per_sec={UNLIMITED}, rate_per_min={UNLIMITED}, "
    f"balance={UNLIMITED}), '127.0.0.1', int(sys.argv[1]))"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def sandbox_process() -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(port)], env=env, cwd=ROOT)  # noqa: S603
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{url}/sandbox/health", timeout=1).raise_for_status()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def _client() -> httpx.Client:
    return httpx.Client(headers=HEADERS, timeout=30, verify=_TLS)


def server_cpu_s(pid: int) -> float | None:
    """CPU seconds the sandbox process has used so far (Linux only)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _drive(
    url: str, clients: list[httpx.Client], start_at: float, seconds: float
) -> tuple[int, float]:
    """Each client loops on its own thread from ``start_at`` for ``seconds``.

    Returns the successes and when the last answer arrived: requests sent just before the
    deadline finish after it, so rates divide by that, not by ``seconds``.
    """
    counts: list[int] = []

    def loop(client: httpx.Client) -> None:
        time.sleep(max(start_at - time.monotonic(), 0))
        deadline, ok = start_at + seconds, 0
        while time.monotonic() < deadline:
            if client.post(f"{url}/v1/wa/message", json=MESSAGE).status_code == 200:
                ok += 1
        counts.append(ok)

    threads = [threading.Thread(target=loop, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    finished_at = time.monotonic()
    for client in clients:
        client.close()
    return sum(counts), finished_at


def _client_process(url: str, threads: int, start_at: float, seconds: float) -> tuple[int, float]:
    return _drive(url, [_client() for _ in range(threads)], start_at, seconds)


def raw_throughput(url: str, pid: int, seconds: float, procs: int, threads: int) -> None:
    httpx.post(f"{url}/sandbox/reset").raise_for_status()
    # CLOCK_MONOTONIC is shared by every process, so all start together once spawned.
    start_at = time.monotonic() + 2.0
    with multiprocessing.get_context("spawn").Pool(procs) as pool:
        cpu_before = server_cpu_s(pid)
        results = pool.starmap(_client_process, [(url, threads, start_at, seconds)] * procs)
        cpu_after = server_cpu_s(pid)
    ok = sum(count for count, _ in results)
    elapsed = max(finished for _, finished in results) - start_at
    accepted = httpx.get(f"{url}/sandbox/stats").json()["accepted"]
    print(
        f"raw: {ok / elapsed:,.0f} successes/s "
        f"({procs} processes x {threads} keep-alive clients for {elapsed:.1f} s; "
        f"the sandbox counted {accepted:,} accepted)"
    )
    if cpu_before is not None and cpu_after is not None and ok:
        per_request_us = (cpu_after - cpu_before) / ok * 1e6
        print(
            f"raw: sandbox CPU {per_request_us:,.0f} us per success, "
            f"so ~{1e6 / per_request_us:,.0f} successes/s per core it is given"
        )


def slow_throughput(url: str, seconds: float, latency_ms: float, concurrency: int) -> None:
    httpx.post(f"{url}/sandbox/reset").raise_for_status()
    httpx.post(f"{url}/sandbox/config", json={"latency_ms": latency_ms}).raise_for_status()
    clients = [_client() for _ in range(concurrency)]
    start_at = time.monotonic() + 0.5
    ok, finished_at = _drive(url, clients, start_at, seconds)
    ideal = concurrency / (latency_ms / 1000)
    achieved = ok / (finished_at - start_at)
    print(
        f"latency {latency_ms:.0f} ms, {concurrency} in flight: {achieved:,.0f} sends/s "
        f"(ideal {ideal:,.0f}/s, ratio {achieved / ideal:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=300)
    parser.add_argument("--latency-ms", type=float, default=300.0)
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}, python {sys.version.split()[0]}")
    with sandbox_process() as (url, pid):
        raw_throughput(url, pid, args.seconds, args.procs, args.threads)
        slow_throughput(url, args.seconds, args.latency_ms, args.concurrency)


if __name__ == "__main__":
    main()
