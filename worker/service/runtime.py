"""The components one process needs, built from settings once per process (never across a fork)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from functools import cached_property, partial
from typing import TYPE_CHECKING

import redis

from worker.accounts import KEY_MAX_AGE_S, Account, Defaults, FreshKey, load_accounts
from worker.errors import ConfigError
from worker.logs import get_logger
from worker.observe.incidents import Incidents
from worker.observe.sinks import build_dispatcher
from worker.observe.status import Engines, Snapshot, take_snapshot
from worker.outcome import Outcome
from worker.producer import Producer, producer_for
from worker.send.arrivals import Arrivals
from worker.send.delivery import Delivery, Timing
from worker.send.gateway import GatewayClient
from worker.send.healing import HaltHealer
from worker.send.pace import CallPace
from worker.send.routing import (
    Action,
    Attempt,
    Policy,
    RoutingTable,
    counted_undelivered_codes,
    decide,
    load_routing_table,
)
from worker.send.settlement import Settlement
from worker.send.transport import PerThreadHTTP, env_proxy_for
from worker.settings import Settings, get_settings
from worker.store.connect import connect_listener, connect_redis, connect_redis_fail_fast
from worker.store.deadletters import DeadLetters
from worker.store.jobs import JobStore
from worker.store.keys import Keys
from worker.store.ratelimit import RateLimit
from worker.store.replication import Replication
from worker.store.switches import Switches
from worker.store.templates import TemplateHolds
from worker.store.transitions import Transitions
from worker.store.watch import SwitchWatch
from worker.urls import broker_kind, store_kind

if TYPE_CHECKING:
    from worker.observe.metrics import Labels, PrometheusMeter

log = get_logger(__name__)

# How long before a claim is given up for dead: the slowest call, a short wait, a margin.
LEASE_MARGIN_S = 5.0
# A rate-limit wait up to this long is slept in the worker; longer ones go to the schedule.
MAX_INLINE_WAIT_S = 1.0


def claim_lease_s(call_deadline_s: float) -> float:
    """How long a claim lasts: strictly longer than the longest call (its total deadline,
    doubled for safety), the in-worker wait before it and a margin, so a live call never
    outlives the claim that guards it.
    """
    return 2 * call_deadline_s + MAX_INLINE_WAIT_S + LEASE_MARGIN_S


def eviction_policy(client: redis.Redis) -> str:
    """Redis's ``maxmemory-policy`` (INFO works where CONFIG is disabled, as on managed Redis)."""
    info: dict[str, object] = client.info("memory")
    return str(info.get("maxmemory_policy", "noeviction"))


def refuse_evicting_redis(client: redis.Redis, *, warn: bool = True) -> None:
    """Redis holds the only copy of every job: a policy that may evict any key is refused
    (ConfigError). One that evicts keys with a TTL is allowed with a warning: pending jobs have
    none, but claims, cooldowns and rate windows do, and losing one early can re-send a job
    whose answer was lost or let calls through too soon."""
    policy = eviction_policy(client)
    if policy.startswith("allkeys-"):
        msg = (
            f"Redis maxmemory-policy is {policy}: it would evict pending jobs; "
            "set it to noeviction (or volatile-*)"
        )
        raise ConfigError(msg)
    if warn and policy.startswith("volatile-"):
        log.warning("redis.evicts_keys_with_ttl", policy=policy, advice="noeviction")


class Runtime:
    """Lazily built components: a producer never opens an HTTP client, a worker does."""

    def __init__(self, settings: Settings, *, fail_fast: bool = False) -> None:
        """``fail_fast`` (commands, not workers): every Redis and broker call answers or fails
        within REDIS_TIMEOUT_S, never riding out an outage."""
        self.settings = settings
        self.keys = Keys(settings.redis_prefix)
        self.fail_fast = fail_fast
        self.redis = (
            connect_redis_fail_fast(
                settings.state_url,
                timeout_s=settings.redis_timeout_s,
                sentinel_password=settings.sentinel_password,
            )
            if fail_fast
            else connect_redis(settings.state_url, sentinel_password=settings.sentinel_password)
        )

    @cached_property
    def jobs(self) -> JobStore:
        return JobStore(self.redis, self.keys)

    @cached_property
    def transitions(self) -> Transitions:
        return Transitions(self.redis, self.keys, retention_s=self.settings.retention_s)

    @cached_property
    def replication(self) -> Replication:
        """The replicas an enqueue and a worker's next call wait for (REDIS_MIN_REPLICAS)."""
        s = self.settings
        return Replication(self.keys, replicas=s.redis_min_replicas, timeout_s=s.redis_timeout_s)

    @cached_property
    def producer_redis(self) -> redis.Redis:
        """Producers fail fast (a web request must not stall), unlike the worker's client."""
        return connect_redis_fail_fast(
            self.settings.state_url,
            timeout_s=self.settings.redis_timeout_s,
            sentinel_password=self.settings.sentinel_password,
        )

    @cached_property
    def producer(self) -> Producer:
        """The commands' producer (``msgworker enqueue``, the demo)."""
        return producer_for(self.settings, self.producer_redis)

    @cached_property
    def accounts(self) -> dict[str, Account]:
        """The configured accounts (ConfigError for a bad accounts file)."""
        s = self.settings
        defaults = Defaults(
            api_key=s.api_key.get_secret_value(),
            rate_per_sec=s.rate_per_sec if "rate_per_sec" in s.model_fields_set else None,
            rate_per_min=s.rate_per_min if "rate_per_min" in s.model_fields_set else None,
            sandbox=s.sandbox,
        )
        return load_accounts(s.accounts_file, defaults)

    @property
    def known_accounts(self) -> frozenset[str]:
        return frozenset(self.accounts)

    @cached_property
    def switches(self) -> Switches:
        return Switches(self.redis, self.keys)

    @cached_property
    def templates(self) -> TemplateHolds:
        return TemplateHolds(self.redis, self.keys)

    @cached_property
    def dead_letters(self) -> DeadLetters:
        return DeadLetters(
            self.redis,
            self.keys,
            retention_s=self.settings.retention_s,
            max_age_s=self.settings.dlq_retention_s,
        )

    @cached_property
    def incidents(self) -> Incidents:
        s = self.settings
        dispatcher = build_dispatcher(
            webhook_url=str(s.alert_webhook_url) if s.alert_webhook_url else None,
            alertmanager_url=str(s.alertmanager_url) if s.alertmanager_url else None,
        )
        return Incidents(self.redis, self.keys, dispatcher, on_fire=self.meter.alerted)

    @cached_property
    def quick_redis(self) -> redis.Redis:
        """For reads that must answer fast or fail (a scrape, a probe), never wait out an outage."""
        return connect_redis(
            self.settings.state_url,
            retries=0,
            timeout_s=1.0,
            sentinel_password=self.settings.sentinel_password,
        )

    def snapshot(self, broker_depth: Callable[[], int], *, quick: bool = False) -> Snapshot:
        """The shared state now (status, metrics), with the broker queue's length from
        ``broker_depth`` (``worker.service.app.broker_depth`` in a worker)."""
        return take_snapshot(
            self.quick_redis if quick else self.redis,
            self.keys,
            queue=self.settings.queue,
            broker_depth=broker_depth,
            accounts=self.known_accounts,
            now=time.time(),
            engines=Engines(
                store_kind(self.settings.state_url),
                broker_kind(self.settings.broker_url),
                min_replicas=self.settings.redis_min_replicas,
            ),
        )

    def close(self) -> None:
        """Deliver pending alerts and close connections (for short-lived commands)."""
        if "incidents" in self.__dict__:
            self.incidents.close()
        if "switch_watch" in self.__dict__:
            self.switch_watch.stop()
        self.redis.close()
        if "producer_redis" in self.__dict__:
            self.producer_redis.close()

    @cached_property
    def timing(self) -> Timing:
        return Timing(
            # A Gateway call lasts at most HTTP_TIMEOUT_S in total (see worker.send.transport).
            lease_s=claim_lease_s(self.settings.http_timeout_s),
            probe_interval_s=self.settings.billing_probe_interval_s,
        )

    @cached_property
    def delivery(self) -> Delivery:
        policy = self.policy
        rate = self.rate_limit
        settlement = Settlement(self.transitions, self.incidents, self.meter)
        return Delivery(
            self.transitions,
            self.gateways,
            policy,
            rate,
            settlement,
            self.timing,
            self.meter,
            pace=self.call_pace,
            arrivals=self.arrivals,
            switches=self.switch_watch,
            stopping=self.shutting_down.is_set,
            replicated=partial(self.replication.confirm_claim, self.redis),
        )

    @cached_property
    def shutting_down(self) -> threading.Event:
        """Set when this worker starts its warm shutdown: deliveries begin no more jobs."""
        return threading.Event()

    @cached_property
    def switch_watch(self) -> SwitchWatch:
        """Hears the switches set anywhere, so that a call that waited for its slot looks at
        them again only when one was."""
        s = self.settings
        return SwitchWatch(
            connect_listener(s.state_url, sentinel_password=s.sentinel_password), self.keys
        )

    @cached_property
    def call_pace(self) -> CallPace:
        """How long this process's Gateway calls take lately (the dispatcher sizes groups by it)."""
        return CallPace()

    @cached_property
    def arrivals(self) -> Arrivals:
        """Where this process's calls reach the Gateway against their slots (see arrivals.py)."""
        return Arrivals()

    @cached_property
    def meter(self) -> PrometheusMeter:
        """Where deliveries and incidents are counted, labelled by the configured accounts."""
        from worker.observe.metrics import PrometheusMeter  # noqa: PLC0415 - prometheus only in workers

        return PrometheusMeter(self.metric_labels)

    @cached_property
    def policy(self) -> Policy:
        s = self.settings
        return Policy(
            table=self.routing_table,
            max_attempts=s.max_attempts,
            max_reschedules=s.max_reschedules,
            backoff_base_s=s.backoff_base_s,
            backoff_cap_s=s.backoff_cap_s,
        )

    @cached_property
    def http(self) -> PerThreadHTTP:
        """The process's connections to the Gateway, shared by every account's client."""
        s = self.settings
        return PerThreadHTTP(
            timeout_s=s.http_timeout_s,
            deadline_s=s.http_timeout_s,
            proxy_url=env_proxy_for(str(s.api_base_url)),
        )

    @cached_property
    def gateways(self) -> dict[str, GatewayClient]:
        """A Gateway client per account, with its key as it is now (``FreshKey``)."""
        base_url = str(self.settings.api_base_url)
        return {
            name: GatewayClient(
                self.http, base_url=base_url, api_key=FreshKey(account), sandbox=account.sandbox
            )
            for name, account in self.accounts.items()
        }

    @cached_property
    def healer(self) -> HaltHealer:
        """Probes the halts the Gateway caused, each call with the key read afresh."""
        base_url = str(self.settings.api_base_url)
        policy = self.policy

        def is_halting(outcome: Outcome) -> bool:
            return decide(outcome, Attempt(calls=1), policy).action is Action.HALT

        return HaltHealer(
            self.switches,
            self.incidents,
            self.accounts,
            lambda account: GatewayClient(
                self.http, base_url=base_url, api_key=account.api_key, sandbox=account.sandbox
            ),
            is_halting,
            interval_s=self.settings.halt_probe_interval_s,
            key_settle_s=KEY_MAX_AGE_S,
        )

    @cached_property
    def rate_limit(self) -> RateLimit:
        """The limiter's start values and ceilings (a rate setting given is a ceiling), with the
        accounts' own."""
        s = self.settings
        rate = RateLimit.configured(
            s.rate_per_sec if "rate_per_sec" in s.model_fields_set else None,
            s.rate_per_min if "rate_per_min" in s.model_fields_set else None,
            max_wait_s=MAX_INLINE_WAIT_S,
            pair_interval_s=s.pair_interval_s,
            pair_burst=s.pair_burst,
        )
        own = {n: (a.rate_per_sec, a.rate_per_min) for n, a in self.accounts.items()}
        return rate.with_accounts(own)

    @cached_property
    def routing_table(self) -> RoutingTable:
        return load_routing_table(self.settings.routing_file)

    @property
    def metric_labels(self) -> Labels:
        """Label values allowed in metrics: the known codes and groups, the routing table's, the
        configured accounts and the undelivered codes counted."""
        from worker.observe.metrics import Labels  # noqa: PLC0415 - prometheus only in workers

        t = self.routing_table
        return Labels(t.codes, t.groups, self.known_accounts, counted_undelivered_codes(t.delivery))


_runtime: tuple[int, Runtime] | None = None


def current_runtime(*, fail_fast: bool = False) -> Runtime:
    """This process's runtime, built on first use after any fork (``fail_fast`` as then asked:
    commands ask for it, workers do not)."""
    global _runtime  # noqa: PLW0603 - one per process by design
    if _runtime is None or _runtime[0] != os.getpid():
        _runtime = (os.getpid(), Runtime(get_settings(), fail_fast=fail_fast))
    return _runtime[1]
