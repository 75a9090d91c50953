"""Hears when an account's halt, billing breaker or cooldown is set, as it happens.

Every script that sets one publishes the account's name on ``Keys.switched``. A delivery whose
call waited for its rate-limit slot asks whether anything was set since begin looked at the
switches: only then does it spend a round trip looking again. While this process is not
subscribed (starting, or its connection lost), it cannot know, so it answers yes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from worker.logs import get_logger
from worker.store.keys import Keys

log = get_logger(__name__)

# How long the listener blocks for a message before it looks whether it should stop.
POLL_S = 0.5
# How long it waits before subscribing again after its connection failed.
RETRY_S = 1.0


class SwitchWatch:
    """When this process last heard each account's switches set; a thread listens.

    Started on first use in each process (a thread does not survive a fork of the pool).
    """

    def __init__(self, url: str, keys: Keys, *, clock: Callable[[], float] = time.time) -> None:
        # A connection of its own that never reconnects by itself: a reconnection would
        # subscribe again without this watch knowing it had been deaf in between.
        self._client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=5.0,
            health_check_interval=30,
            retry=Retry(NoBackoff(), retries=0),
        )
        self._channel = keys.switched
        self._clock = clock
        self._heard: dict[str, float] = {}
        # Since when the subscription has held without a break; None while not subscribed.
        self._listening_since: float | None = None
        self._owner_pid: int | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def changed_since(self, account: str, moment: float) -> bool:
        """Whether a switch of ``account`` may have been set after ``moment`` (this process's
        clock): one was heard since, or this process was not listening all along since then."""
        self._start_once()
        listening_since = self._listening_since
        if listening_since is None or listening_since > moment:
            return True
        heard = self._heard.get(account)
        return heard is not None and heard >= moment

    def stop(self) -> None:
        """The listener ends within ``POLL_S`` and closes its connection."""
        self._stopping.set()

    def _start_once(self) -> None:
        if self._owner_pid == os.getpid():
            return
        with self._lock:
            if self._owner_pid == os.getpid():
                return
            self._owner_pid = os.getpid()
            self._listening_since = None  # a forked child inherits the flag, not the thread
            threading.Thread(target=self._listen, name="switch-watch", daemon=True).start()

    def _listen(self) -> None:
        while not self._stopping.is_set():
            try:
                self._subscribed()
            except redis.RedisError as error:
                log.warning("switches.watch_lost", error=type(error).__name__)
                self._stopping.wait(RETRY_S)
        self._client.close()

    def _subscribed(self) -> None:
        pubsub = self._client.pubsub()  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self._channel)
            while not self._stopping.is_set():
                message = pubsub.get_message(timeout=POLL_S)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    self._listening_since = self._clock()
                elif message["type"] == "message":
                    self._heard[str(message["data"])] = self._clock()
        finally:
            self._listening_since = None
            pubsub.close()
