"""A real ``msgworker serve`` (uvicorn) process on a free port, for HTTP tests and benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.support.cluster import API_KEY
from tests.support.processes import free_port, wait_for
from worker.sandbox.server import SandboxConfig

BIN = Path(sys.executable).parent
TOKEN = "tok_test_0123456789abcdef"  # noqa: S105 - a test token
OTHER_TOKEN = "tok_rotated_fedcba9876543210"  # noqa: S105


class Service:
    """``msgworker serve`` with these settings; its own working directory (no stray .env)."""

    def __init__(self, workdir: Path, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.log = workdir / "serve.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MSGWORKER_")}
        env.update({f"MSGWORKER_{k.upper()}": v for k, v in settings.items()})
        env.update(MSGWORKER_SERVE_PORT=str(self.port), MSGWORKER_SERVE_HOST="127.0.0.1")
        env.setdefault("MSGWORKER_LOG_FORMAT", "json")
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *args: str) -> Service:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own command
                [str(BIN / "msgworker"), "serve", *args],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._alive, timeout_s=30, what=f"msgworker serve on {self.url}")
        return self

    def _alive(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"serve exited: {self.log.read_text(errors='replace')[-2000:]}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def posting_to(service: Service, secret: str, **knobs: Any) -> SandboxConfig:
    """A sandbox whose Meta posts each message's statuses to ``service``'s webhooks: sent at
    once, delivered after 0.1 s, read after 0.2 s; limits far above what a test sends. ``knobs``
    are SandboxConfig's own, and win."""
    defaults: dict[str, Any] = {
        "api_keys": (API_KEY,),
        "rate_per_sec": 2000,
        "rate_per_min": 200_000,
        "webhook_url": f"{service.url}/webhooks/gateway",
        "webhook_secret": secret,
        "webhook_sent_s": 0.0,
        "webhook_delivered_s": 0.1,
        "webhook_read_s": 0.2,
    }
    return SandboxConfig(**{**defaults, **knobs})
