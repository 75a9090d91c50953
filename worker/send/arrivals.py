"""Where this process's calls reach the Gateway, against their slots, and the margin it keeps.

The Gateway counts arrivals in a sliding second; the limiter hands out slots. A call reaches the
Gateway a little after its slot: its thread wakes from the wait, may look at the switches again,
builds and writes the request, and the request may queue on the way or at the Gateway. That
delay varies from call to call, and a call that arrives late takes its late place in the
Gateway's second: the call a window after it must wait as long, or meet a 429 (which costs the
account about a second of sending: its cooldown).

So each settlement moves its call's entry in the limiter's window to where the call arrived
(``arrived`` in ratelimit.lua): the slots handed out after the answer lie a window after the
arrival. The arrival is reckoned from the send's own clock: the time from the slot to sending
the request, plus how much longer than this process's quickest recent accepted call the answer
took (a request that queued on the way, or at the Gateway, answers late by as much). The delay
every call has (the quickest round trip's) shifts all calls alike and is left out. Only accepted
calls set the quickest: a refusal or an error can come back much sooner than a send, and would
make every send look late. (One quickest for the process: calls that take longer at the Gateway
by their kind, a media template say, are reckoned late by the difference, which only slows.)

What the move cannot cover is left to a small margin on the Gateway's second: a slot handed out
before the answer of the call a window before it (a reservation more than a window minus the
call's round trip ahead: rare, the pump plans a quarter of a second ahead), whole milliseconds,
and what the round trip does not show. Each 429 (RATE_001) this process meets widens the margin
by ``REFUSED_MS`` for ``REFUSED_S``. Until ``MIN_SAMPLES`` accepted calls are measured the
margin is the start margin (the quickest call is not known yet).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from worker.store.ratelimit import SEC_MARGIN_START_MS

# How many calls the quickest round trip is taken over (a few seconds of an account's sending at
# 80/s; a slower route found later counts within that many calls).
SAMPLES = 512
MIN_SAMPLES = 64
# What the move cannot cover (see above); never wider than MAX_MS.
MARGIN_MS = 3
REFUSED_MS = 10
REFUSED_S = 60.0
MAX_MS = 100
# The quickest round trip is looked for again every this many calls, not at each.
UPDATE_EVERY = 32


class Arrivals:
    """This process's calls against their slots: their arrival, and its begins' margin (``ms``).

    Threads feed it under a lock (held for an append, and every ``UPDATE_EVERY`` accepted calls
    for a look over the samples).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._round_trips: deque[float] = deque(maxlen=SAMPLES)
        self._quickest_s: float | None = None
        self._refused_at: deque[float] = deque()
        self._unseen = 0
        self.ms = SEC_MARGIN_START_MS

    def arrival_ms(self, sent_s: float, round_trip_s: float, *, accepted: bool) -> int:
        """When a call sent ``sent_s`` after its slot and answered ``round_trip_s`` after that
        (``accepted``: with a message id) reached the Gateway, in whole ms after its slot
        (rounded up)."""
        with self._lock:
            quickest = self._quickest_s
            if accepted:
                self._round_trips.append(round_trip_s)
                if quickest is None or round_trip_s < quickest:
                    self._quickest_s = quickest = round_trip_s
                self._unseen += 1
                if self._unseen >= UPDATE_EVERY:
                    self._update()
        if quickest is None:  # no call accepted yet: this one's own round trip is all there is
            quickest = round_trip_s
        return max(0, math.ceil((sent_s + round_trip_s - quickest) * 1000))

    def refused(self) -> None:
        """A call of this process was answered 429 (RATE_001)."""
        with self._lock:
            self._refused_at.append(self._clock())
            self._update()

    def _update(self) -> None:
        self._unseen = 0
        if self._round_trips:
            self._quickest_s = min(self._round_trips)
        now = self._clock()
        while self._refused_at and now - self._refused_at[0] > REFUSED_S:
            self._refused_at.popleft()
        base = MARGIN_MS if len(self._round_trips) >= MIN_SAMPLES else SEC_MARGIN_START_MS
        self.ms = min(MAX_MS, base + REFUSED_MS * len(self._refused_at))
