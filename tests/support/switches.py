"""When a switch (halt, breaker, cooldown) was set, as Redis itself announces it: the start of the
window in which no call may begin. Read from keyspace notifications, not from the time the
product writes into the switch, so a product that records a switch late cannot widen it."""

from __future__ import annotations

import threading
import time

import redis

from tests.support.processes import wait_for

# A call already in flight when the switch was recorded reaches the sandbox within this.
IN_FLIGHT_S = 0.05


class Recorded:
    """When a key was first written, as Redis announces it (keyspace notifications)."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        client.config_set("notify-keyspace-events", "KA")
        self.at: float | None = None
        self._pubsub = client.pubsub()
        self._pubsub.subscribe(f"__keyspace@0__:{key}")
        self._pubsub.get_message(timeout=1)  # the subscription's confirmation
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while self.at is None:
            if self._pubsub.get_message(timeout=0.5):
                self.at = time.time()

    def wait(self) -> float:
        at = wait_for(lambda: self.at, timeout_s=15, what="the switch")
        self._pubsub.close()
        return at
