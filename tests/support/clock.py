"""A test's own clock: time moves only when the code under test sleeps (or the test says so)."""

from __future__ import annotations


class Clock:
    """Pass it as ``clock`` and its ``sleep`` as ``sleep``; ``slept`` lists every pause asked."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
