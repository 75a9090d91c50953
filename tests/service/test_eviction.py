"""Every one of Redis's eviction policies, as the worker judges it at start against a real Redis:
the three that may evict any key are refused (a pending job has no TTL, and only those can drop
it), the four that evict keys with a TTL pass with a warning, noeviction passes quietly."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from worker.errors import ConfigError
from worker.service.runtime import refuse_evicting_redis

REFUSED = ("allkeys-lru", "allkeys-lfu", "allkeys-random")
WARNED = ("volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl")


@pytest.fixture
def policy(redis_client):
    """Sets the server's maxmemory-policy; puts noeviction back after the test."""

    def set_policy(name: str) -> None:
        redis_client.config_set("maxmemory-policy", name)

    yield set_policy
    redis_client.config_set("maxmemory-policy", "noeviction")


def test_every_policy_redis_knows_is_judged():
    """The lists here with noeviction are all eight policies Redis has."""
    assert len({*REFUSED, *WARNED, "noeviction"}) == 8


@pytest.mark.parametrize("name", REFUSED)
def test_a_policy_that_may_evict_any_key_is_refused(redis_client, policy, name):
    """allkeys-*: ConfigError naming the policy and what to set instead."""
    policy(name)
    with pytest.raises(ConfigError, match=f"{name}.*noeviction"):
        refuse_evicting_redis(redis_client)


@pytest.mark.parametrize("name", WARNED)
def test_a_policy_that_evicts_keys_with_a_ttl_starts_with_a_warning(redis_client, policy, name):
    """volatile-*: allowed (no pending job has a TTL), with a warning event naming it."""
    policy(name)
    with capture_logs() as events:
        refuse_evicting_redis(redis_client)
    assert [e["policy"] for e in events if e["event"] == "redis.evicts_keys_with_ttl"] == [name]


def test_noeviction_passes_without_a_word(redis_client, policy):
    """noeviction: nothing refused, nothing logged."""
    policy("noeviction")
    with capture_logs() as events:
        refuse_evicting_redis(redis_client)
    assert events == []
