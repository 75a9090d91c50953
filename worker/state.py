"""The shared state right now, as operators see it (``msgworker status``, the metric gauges)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis

from worker.deadletters import dead_letter_counts
from worker.keys import DEFAULT_ACCOUNT, Keys
from worker.switches import Breaker, Halt, Switches

# The send rate shown is the mean of the last ten whole seconds.
RATE_WINDOW_S = 10


@dataclass(frozen=True)
class AccountState:
    halt: Halt | None
    breaker: Breaker | None
    cooldown_until: float | None
    held: int


@dataclass(frozen=True)
class Snapshot:
    """Figures read in one pass; ``depth`` is what is due now and not yet sent."""

    queue: str
    ready: int
    in_broker: int
    scheduled: int
    in_flight: int
    enqueued: int
    sends_per_s: float
    dead_letters: dict[str, int]
    accounts: dict[str, AccountState]

    @property
    def depth(self) -> int:
        return self.ready + self.in_broker

    @property
    def drain_s(self) -> float | None:
        """Seconds the due backlog needs at the current send rate; None when nothing is sent."""
        if self.depth == 0:
            return 0.0
        return self.depth / self.sends_per_s if self.sends_per_s > 0 else None


def known_accounts(client: redis.Redis, keys: Keys) -> set[str]:
    """The default account and every account with a halt, breaker or hold list."""
    accounts = {DEFAULT_ACCOUNT}
    for kind in ("halt", "breaker", "held"):
        pattern = f"{keys.prefix}{kind}:*"
        for key in client.scan_iter(match=pattern, count=500):
            name = keys.account_of(kind, str(key))
            if name is not None:  # breaker:<account>:probe is not an account
                accounts.add(name)
    return accounts


def take_snapshot(
    client: redis.Redis,
    keys: Keys,
    *,
    queue: str,
    broker_depth: Callable[[], int],
    now: float,
) -> Snapshot:
    pipe = client.pipeline(transaction=False)
    pipe.zcount(keys.due, "-inf", now)
    pipe.zcount(keys.due, f"({now}", "+inf")
    pipe.zcard(keys.leases)
    pipe.get(keys.enqueued_count)
    last_seconds = range(int(now) - RATE_WINDOW_S, int(now))
    pipe.mget([keys.sent_in_second(second) for second in last_seconds])
    ready, scheduled, leased, enqueued, sent = pipe.execute()
    in_broker = broker_depth()
    switches = Switches(client, keys)
    accounts = {
        account: AccountState(
            halt=switches.halted(account),
            breaker=switches.breaker(account),
            cooldown_until=switches.cooldown_until(account),
            held=switches.held_count(account),
        )
        for account in sorted(known_accounts(client, keys))
    }
    return Snapshot(
        queue=queue,
        ready=int(ready),
        in_broker=in_broker,
        scheduled=int(scheduled),
        # Leased jobs include those still waiting in the broker.
        in_flight=max(0, int(leased) - in_broker),
        enqueued=int(enqueued or 0),
        sends_per_s=sum(int(n or 0) for n in sent) / RATE_WINDOW_S,
        dead_letters=dead_letter_counts(client, keys),
        accounts=accounts,
    )
