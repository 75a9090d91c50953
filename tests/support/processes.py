"""Waiting on conditions, and the private redis-server (the product's own launcher)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from worker.dev.localredis import LocalRedis as RedisServer
from worker.dev.localredis import free_port, redis_server_binary

__all__ = ["RedisServer", "free_port", "redis_server_binary", "wait_for"]

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T], *, timeout_s: float = 10.0, interval_s: float = 0.02, what: str = ""
) -> T:
    """Poll until ``condition()`` is truthy and return it; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what or condition}")
        time.sleep(interval_s)
