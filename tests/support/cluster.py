"""Real `celery worker` processes and the sandbox's admin API, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import wait_for

API_KEY = "sk_e2e_key_5f4e3d2c1b"
BIN = Path(sys.executable).parent


class Sandbox:
    """The sandbox's admin endpoints."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._http = httpx.Client(base_url=url, timeout=10)

    def close(self) -> None:
        self._http.close()

    def post(self, path: str, body: Any) -> Any:
        response = self._http.post(path, json=body)
        response.raise_for_status()
        return response.json()

    def script(self, *answers: dict[str, Any]) -> None:
        self.post("/sandbox/script", {"answers": list(answers)})

    def configure(self, **knobs: Any) -> None:
        self.post("/sandbox/config", knobs)

    def reset(self) -> None:
        self.post("/sandbox/reset", {})

    def stats(self) -> dict[str, Any]:
        return dict(self._http.get("/sandbox/stats").json())

    def requests(self) -> list[dict[str, Any]]:
        """Every request received: ``{"at", "code"}``, oldest first."""
        return list(self._http.get("/sandbox/requests").json()["requests"])

    def messages(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        since = 0
        while True:
            page = self._http.get(
                "/sandbox/messages", params={"since": since, "limit": 10000}
            ).json()
            found += page["messages"]
            if not page["messages"]:
                return found
            since = page["next"]

    def bodies(self) -> Counter[str]:
        """How many times each text body was accepted."""
        return Counter(m["body"]["text"]["body"] for m in self.messages() if m["body"].get("text"))


class WorkerProcess:
    """One `msgworker worker` (or `celery -A worker.service.app worker`) command."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own console script
            args, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 30) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log()[-3000:]}")
            return " ready." in self.log()

        wait_for(ready, timeout_s=timeout_s, what="worker ready")

    def children(self) -> list[int]:
        """Pool processes (prefork)."""
        out = subprocess.run(  # noqa: S603
            ["/usr/bin/pgrep", "-P", str(self.pid)], capture_output=True, text=True, check=False
        )
        return [int(p) for p in out.stdout.split()]

    def kill(self) -> None:
        """kill -9 the whole worker: main process and pool."""
        os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout_s: float = 20) -> None:
        """Warm shutdown (SIGTERM); kill if it does not stop in time."""
        if self.process.poll() is None:
            os.killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def run_msgworker(
    env: dict[str, str],
    *args: str,
    stdin: str | None = None,
    cwd: Path | None = None,
    timeout_s: float = 60,
) -> subprocess.CompletedProcess[str]:
    """The real `msgworker` console script with this environment; any exit code is returned."""
    return subprocess.run(  # noqa: S603 - our own console script
        [str(BIN / "msgworker"), *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def worker_env(redis_url: str, sandbox_url: str, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGWORKER_")}
    env.update(
        {
            "MSGWORKER_BROKER_URL": redis_url,
            "MSGWORKER_API_BASE_URL": sandbox_url,
            "MSGWORKER_API_KEY": API_KEY,
            "MSGWORKER_SANDBOX": "true",
            "MSGWORKER_LOG_FORMAT": "json",
            "MSGWORKER_LOG_LEVEL": "INFO",
            "MSGWORKER_BACKOFF_BASE_S": "0.1",
            "MSGWORKER_BACKOFF_CAP_S": "0.4",
            "MSGWORKER_HTTP_TIMEOUT_S": "2",
            "MSGWORKER_MAX_ATTEMPTS": "4",
            "MSGWORKER_BILLING_PROBE_INTERVAL_S": "30",
            "MSGWORKER_METRICS_PORT": "0",
            # The tests' messages go to one number (messages.PHONE): paced only where asked.
            "MSGWORKER_PAIR_INTERVAL_S": "0",
        }
    )
    env.update({f"MSGWORKER_{k.upper()}": v for k, v in overrides.items()})
    return env


def start_worker(
    env: dict[str, str],
    log_path: Path,
    *,
    pool: str = "threads",
    concurrency: int = 8,
    via_celery: bool = False,
    extra: tuple[str, ...] = (),
) -> WorkerProcess:
    options = ["--pool", pool, "--concurrency", str(concurrency), *extra]
    if via_celery:
        queue = env.get("MSGWORKER_QUEUE", "messages")
        args = [
            str(BIN / "celery"),
            "-A",
            "worker.service.app",
            "worker",
            "--queues",
            queue,
            *options,
        ]
    else:
        args = [str(BIN / "msgworker"), "worker", *options]
    worker = WorkerProcess(args, env, log_path)
    worker.wait_ready()
    return worker
