"""How long this process's Gateway calls take lately: what the dispatcher sizes groups by.

A broker message carries a group of jobs that one worker thread delivers one after the other,
so a group is worth its saving (one broker message and one claim round trip for several sends)
only while its calls are short: with quick answers a thread goes through a group within its
rate-limit slots anyway, with slow ones the group's last jobs would wait for the calls before.
"""

from __future__ import annotations

import math

# A group is made no longer than this to go through, one call after the other: the pump's
# lookahead, what a job may wait behind its account's slots anyway. Not shorter: calls also
# look slow when the worker is short of CPU (its threads wait for the interpreter, not for the
# Gateway), and small groups then cost it a broker message and a claim per send, when saving
# those is what it needs (a DLQ drain at 50 ms: groups of 1.5 and 0.79x a bare task's rate;
# at 250 ms: 6.7 and 1.31x, bench/drain.py).
GROUP_SPAN_S = 0.25
# Jobs per broker message at most: whatever the pace, a slow call now and then holds back the
# jobs after it in its group (for one call's deadline at worst). With quick answers a message's
# fetch, unacked entry, ack and publish are most of what a worker and Redis spend beside the
# sends: 16 halves them against 8 (bench/overhead.py: worker CPU 1,206 against about 1,450 µs a
# send, Redis round trips 1.34 against 1.68), and lanes and accounts keep their figures
# (bench/priority.py, bench/isolation.py).
MAX_GROUP = 16
# The weight of each new call in the running mean: about the last 50 calls count.
WEIGHT = 0.02


class CallPace:
    """A running mean of call durations, fed by every call a delivery makes in this process.

    Threads update it without a lock: a lost update costs one sample of a running mean.
    """

    def __init__(self) -> None:
        self._mean_s: float | None = None

    def record(self, seconds: float) -> None:
        mean = self._mean_s
        self._mean_s = seconds if mean is None else mean + WEIGHT * (seconds - mean)

    @property
    def mean_s(self) -> float | None:
        """The running mean, or None before the first call of this process."""
        return self._mean_s


def group_size(jobs: int, consumers: int, call_s: float | None, accounts: int = 1) -> int:
    """How many of ``jobs`` dispatches (of ``accounts`` accounts) go in one broker message.

    At least enough that the consumers share them all (a long queue); more while calls are quick
    enough that a group goes through within ``GROUP_SPAN_S``. Calls not seen yet (a new process,
    or a pool whose calls run in other processes) count as slow. Whatever those allow, never so
    many that there are fewer groups than accounts (or than consumers, when those are fewer:
    a group holds its thread until its last job's slot): the jobs come in slot order and are
    dealt out to the groups in turn, so with a group for each account a group's jobs come due
    about one account's slot gap apart, and its thread takes each at its slot (with fewer, a
    thread falls behind jobs of several accounts due close together, and each job begun late
    costs its account that much of its limit: ten accounts at 40/s, groups of up to 16 cut in
    slot order, sent at 87 % of it).
    """
    spread = math.ceil(jobs / max(1, consumers))
    quick = math.floor(GROUP_SPAN_S / call_s) if call_s else 1
    # The largest size that leaves a group for each account (no more groups than consumers).
    groups = min(accounts, consumers)
    per_account = (jobs - 1) // (groups - 1) if groups > 1 and jobs > 1 else jobs
    return max(1, min(MAX_GROUP, per_account, max(spread, quick)))
