"""Hears when an account's halt, billing breaker or cooldown is set, as it happens.

Every script that sets one publishes the account's name on ``Keys.switched``. A delivery takes
a token before begin looks at the switches; a call that then waited for its rate-limit slot
spends a round trip looking again only when something was heard since that token. While this
process is not subscribed (starting, its connection lost), or its connection has not answered
a ping lately (a silent network), it cannot know, so every call looks again.

Tokens count messages, not clock times: a wall clock stepped back cannot hide a message.
"""

from __future__ import annotations

import os
import threading
import time

import redis

from worker.logs import get_logger
from worker.store.keys import Keys

log = get_logger(__name__)

# How often the listener pings through its subscription, and how long without an answer makes
# it deaf: a connection that went silent without closing raises nothing by itself.
PING_S = 0.5
ALIVE_S = 1.5
# How long the listener waits before subscribing again after its connection failed.
RETRY_S = 1.0


class SwitchWatch:
    """What this process heard on the channel, as a count any change moves; a thread listens.

    Started once in each process (a thread does not survive a fork of the pool).
    """

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        """``client``: a client of its own that never retries by itself (a reconnection would
        subscribe again without this watch knowing it had been deaf in between)."""
        self._client = client
        self._channel = keys.switched
        # Moves with every message heard and every subscription made or lost.
        self._count = 0
        self._subscribed = False
        self._answered_at = float("-inf")  # monotonic: the last answer to a ping
        self._owner_pid: int | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def token(self) -> int | None:
        """Where the watch stands now (take it before begin looks at the switches); None while
        it cannot hear."""
        self.start()
        return self._count if self._hearing() else None

    def changed(self, token: int | None) -> bool:
        """Whether a switch may have been set since ``token`` was taken."""
        return token is None or token != self._count or not self._hearing()

    def stop(self) -> None:
        """The listener ends within ``PING_S`` and closes its connection."""
        self._stopping.set()

    def _hearing(self) -> bool:
        return self._subscribed and time.monotonic() - self._answered_at <= ALIVE_S

    def start(self) -> None:
        """Listen from now on in this process (once; the first token starts it otherwise, and
        a worker starts it before its first task, so that no task waits for it)."""
        if self._owner_pid == os.getpid():
            return
        with self._lock:
            if self._owner_pid == os.getpid():
                return
            self._owner_pid = os.getpid()
            self._subscribed = False  # a forked child inherits the flag, not the thread
            threading.Thread(target=self._listen, name="switch-watch", daemon=True).start()

    def _listen(self) -> None:
        while not self._stopping.is_set():
            try:
                self._hear()
            except Exception as error:  # noqa: BLE001 - deaf, never dead: every call looks again
                log.warning("switches.watch_lost", error=type(error).__name__)
                self._stopping.wait(RETRY_S)
        self._client.close()

    def _hear(self) -> None:
        pubsub = self._client.pubsub()  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self._channel)
            pinged_at = float("-inf")
            while not self._stopping.is_set():
                if time.monotonic() - pinged_at >= PING_S:
                    pubsub.ping("alive")
                    pinged_at = time.monotonic()
                message = pubsub.get_message(timeout=PING_S)
                if message is None:
                    continue
                # Anything read proves the connection alive (the answer to a ping comes in
                # whatever shape the client's parser gives it).
                self._answered_at = time.monotonic()
                if message["type"] == "subscribe":
                    self._count += 1
                    self._subscribed = True
                elif message["type"] == "message":
                    self._count += 1
        finally:
            self._subscribed = False
            self._count += 1
            pubsub.close()
