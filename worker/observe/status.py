"""The shared state right now, as operators see it (``msgworker status``, the metric gauges)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import redis

from worker.account_names import DEFAULT_ACCOUNT
from worker.observe.workers import ALIVE_S
from worker.outcome import OK
from worker.store.deadletters import dead_letter_counts
from worker.store.keys import Keys
from worker.store.schedule import scheduled_by_account
from worker.store.switches import Breaker, Halt, Switches
from worker.store.templates import TemplateHold, TemplateHolds
from worker.store.topology import store_nodes
from worker.urls import BrokerKind, StoreKind

# The send rate shown is the mean of the last ten whole seconds.
RATE_WINDOW_S = 10
# Records read per round trip when dead letters are counted by account.
SCAN_CHUNK = 500


@dataclass(frozen=True)
class AccountState:
    halt: Halt | None
    breaker: Breaker | None
    cooldown_until: float | None
    held: int
    depth: int = 0  # due now, not yet sent (jobs of the account in the schedule)
    dlq_total: int = 0
    # The limits learned from the Gateway's headers (None: none announced, or none usable).
    learned_sec: int | None = None
    learned_min: int | None = None
    templates_held: tuple[TemplateHold, ...] = ()  # by name and language
    # Until when the bulk lane is not dispatched (Meta doubted the sender's standing); None: not.
    bulk_paused_until: float | None = None


@dataclass(frozen=True)
class Engines:
    """Which engines hold the state and carry the dispatches; the store's nodes now."""

    store: StoreKind = StoreKind.REDIS
    broker: BrokerKind = BrokerKind.REDIS
    primaries: int = 1  # serving now (a cluster's, from CLUSTER NODES)
    replicas: int = 0  # connected to the primary now (on a cluster, the fewest a primary has)
    min_replicas: int = 0  # REDIS_MIN_REPLICAS: how many every promised write waits for

    @property
    def nodes(self) -> str:
        """The store's nodes in words: ``1 primary, 2 replicas``, ``3 primaries, at least 1
        replica each`` (a cluster's fewest)."""
        primaries = "primary" if self.primaries == 1 else "primaries"
        replicas = "replica" if self.replicas == 1 else "replicas"
        if self.primaries > 1:
            return f"{self.primaries} {primaries}, at least {self.replicas} {replicas} each"
        return f"{self.primaries} {primaries}, {self.replicas} {replicas}"

    @property
    def replicas_missing(self) -> int:
        """Replicas short of REDIS_MIN_REPLICAS: while above 0, writes wait and then fail."""
        return max(0, self.min_replicas - self.replicas)


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
    workers: int = 0
    engines: Engines = Engines()

    @property
    def depth(self) -> int:
        return self.ready + self.in_broker

    @property
    def drain_s(self) -> float | None:
        """Seconds the due backlog needs at the current send rate; None when nothing is sent."""
        if self.depth == 0:
            return 0.0
        return self.depth / self.sends_per_s if self.sends_per_s > 0 else None


def accounts_to_report(client: redis.Redis, keys: Keys, configured: Iterable[str]) -> set[str]:
    """The configured accounts and every account with a halt, breaker, hold list, held template
    or bulk pause."""
    accounts = set(configured)
    for kind in ("halt", "breaker", "held", "templates-held", "bulk-paused"):
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
    accounts: Iterable[str] = (DEFAULT_ACCOUNT,),
    engines: Engines = Engines(),
) -> Snapshot:
    """The figures now; ``engines`` are the kinds configured, its nodes are counted here."""
    scheduled_jobs = scheduled_by_account(client, keys, now)
    ready = sum(due_now for due_now, _ in scheduled_jobs.values())
    scheduled = sum(later for _, later in scheduled_jobs.values())
    pipe = client.pipeline(transaction=False)
    pipe.zcard(keys.leases)
    pipe.get(keys.enqueued_count)
    pipe.zcount(keys.workers, now - ALIVE_S, "+inf")
    for second in range(int(now) - RATE_WINDOW_S, int(now)):
        pipe.hget(keys.answers_in_second(second), OK)
    leased, enqueued, workers, *sent = pipe.execute()
    nodes = store_nodes(client)  # not in the pipeline: a cluster's asks CLUSTER NODES
    in_broker = broker_depth()
    dead_letters = dead_letter_counts(client, keys)
    names = sorted(accounts_to_report(client, keys, accounts))
    if len(names) == 1:  # the common case: every job and dead letter is this account's
        depths = {names[0]: ready + in_broker}
        dlq_totals = {names[0]: sum(dead_letters.values())}
    else:
        depths = {account: due_now for account, (due_now, _) in scheduled_jobs.items()}
        dlq_totals = _dead_letters_by_account(client, keys)
    accounts = {
        account: _account_state(
            client, keys, account, depth=depths.get(account, 0), dlq=dlq_totals.get(account, 0)
        )
        for account in names
    }
    return Snapshot(
        queue=queue,
        ready=ready,
        in_broker=in_broker,
        scheduled=scheduled,
        # Leased jobs include those still waiting in the broker.
        in_flight=max(0, int(leased) - in_broker),
        enqueued=int(enqueued or 0),
        sends_per_s=sum(int(n or 0) for n in sent) / RATE_WINDOW_S,
        dead_letters=dead_letters,
        accounts=accounts,
        workers=int(workers),
        engines=replace(engines, primaries=nodes.primaries, replicas=nodes.replicas),
    )


def _account_state(
    client: redis.Redis, keys: Keys, account: str, *, depth: int, dlq: int
) -> AccountState:
    """One account's switches, holds and learned limits; its due jobs and dead letters given."""
    switches = Switches(client, keys)
    learned_sec, learned_min = _learned_limits(client, keys, account)
    return AccountState(
        halt=switches.halted(account),
        breaker=switches.breaker(account),
        cooldown_until=switches.cooldown_until(account),
        held=switches.held_count(account),
        depth=depth,
        dlq_total=dlq,
        learned_sec=learned_sec,
        learned_min=learned_min,
        templates_held=tuple(TemplateHolds(client, keys).held(account)),
        bulk_paused_until=switches.bulk_paused_until(account),
    )


def _learned_limits(client: redis.Redis, keys: Keys, account: str) -> tuple[int | None, int | None]:
    """The (sec, min) limits learned from the Gateway; a value that is not a limit is None."""

    def limit(raw: object) -> int | None:
        try:
            value = int(str(raw))
        except ValueError:
            return None
        return value if value >= 1 else None

    sec, per_min = client.hmget(keys.limits(account), ["sec", "min"])
    return limit(sec), limit(per_min)


def _dead_letters_by_account(client: redis.Redis, keys: Keys) -> dict[str, int]:
    """Dead letters by account (several accounts only); a record that does not parse is skipped."""
    counts: dict[str, int] = {}
    ids = [str(i) for i in client.zrange(keys.dead_letter_index, 0, -1)]
    for start in range(0, len(ids), SCAN_CHUNK):
        chunk = ids[start : start + SCAN_CHUNK]
        for raw in client.mget([keys.dead_letter(i) for i in chunk]):
            try:
                account = str(json.loads(str(raw))["account"]) if raw else None
            except (ValueError, KeyError, TypeError):
                account = None
            if account is not None:
                counts[account] = counts.get(account, 0) + 1
    return counts
