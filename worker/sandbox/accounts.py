"""The sandbox's API keys: their balances and the sliding windows that rate-limit them."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field


def to_milli(amount: float) -> int:
    """An amount in integer thousandths (balances are kept so: no float drift)."""
    return round(amount * 1000)


class SlidingWindow:
    """Times of the requests let through during the last ``span_s`` seconds."""

    __slots__ = ("_hits", "span_s")

    def __init__(self, span_s: float) -> None:
        self.span_s = span_s
        self._hits: deque[float] = deque()

    def used(self, now: float) -> int:
        hits, cutoff = self._hits, now - self.span_s
        while hits and hits[0] <= cutoff:
            hits.popleft()
        return len(hits)

    def wait_s(self, now: float, limit: int) -> float:
        """Seconds until one more request fits under ``limit``; call right after `used`."""
        excess = len(self._hits) - limit
        return self._hits[excess] + self.span_s - now if excess >= 0 else 0.0

    def add(self, now: float) -> None:
        self._hits.append(now)

    def clear(self) -> None:
        self._hits.clear()


@dataclass
class KeyAccount:
    """One API key as the sandbox knows it; only its label is ever shown."""

    label: str
    start_milli: int
    balance_milli: int
    no_billing: bool = False
    waba_broken: bool = False
    # The key's own limits (None: the sandbox's rate_per_sec / rate_per_min).
    rate_per_sec: int | None = None
    rate_per_min: int | None = None
    per_sec: SlidingWindow = field(default_factory=lambda: SlidingWindow(1.0))
    per_min: SlidingWindow = field(default_factory=lambda: SlidingWindow(60.0))


@dataclass
class Stats:
    """Counts of every gateway request since start or the last reset."""

    requests: int = 0
    accepted: int = 0
    by_code: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    by_key: dict[str, Counter[str]] = field(default_factory=dict)  # key label -> answer codes
    faults: Counter[str] = field(default_factory=Counter)
