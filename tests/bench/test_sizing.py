"""bench/sizing.py, the sizing model: which resource runs out first, and what carrying the
demand takes (its placement of accounts on a real cluster: tests/store/test_cluster_support.py)."""

from __future__ import annotations

import pytest

from bench.sizing import (
    LIMITER_MARGIN,
    Costs,
    Deployment,
    accounts_per_primary,
    ceilings,
    needed,
    report,
    slot_ranges,
)

ACCOUNTS = tuple(f"account-{n}" for n in range(1, 201))


def deployment(primaries: int = 3, hosts: int = 4, cores: int = 8) -> Deployment:
    return Deployment(primaries=primaries, accounts=ACCOUNTS, hosts=hosts, cores=cores)


def test_slots_are_split_as_redis_cli_splits_them():
    """Equal shares with rounded ends: 0-5460, 5461-10922, 10923-16383 for three."""
    assert slot_ranges(3) == [5460, 10922, 16383]
    assert slot_ranges(1) == [16383]


def test_every_account_lands_on_one_primary():
    """The counts add up to the accounts, busiest first."""
    counts = accounts_per_primary(ACCOUNTS, 7)
    assert sum(counts) == len(ACCOUNTS)
    assert counts == sorted(counts, reverse=True)


def test_the_gateway_bounds_a_deployment_with_room_everywhere_else():
    """Few accounts, ample hosts and primaries: the per-key limits are what runs out."""
    small = Deployment(primaries=3, accounts=ACCOUNTS[:10], hosts=8, cores=8)
    gateway, primary, workers = ceilings(small, Costs())
    assert gateway.sends_per_s == pytest.approx(10 * 80 * LIMITER_MARGIN)
    assert gateway.sends_per_s < min(primary.sends_per_s, workers.sends_per_s)
    assert "runs out first: the Gateway" in "\n".join(report(small, Costs(), None))


def test_the_busiest_primary_runs_out_first_when_redis_costs_more():
    """The primary's ceiling is its core's headroom over the busiest primary's share."""
    costs = Costs(redis_us=1000.0)
    busiest = accounts_per_primary(ACCOUNTS, 3)[0]
    _, primary, _ = ceilings(deployment(hosts=100), costs)
    assert primary.sends_per_s == pytest.approx(0.7e6 / 1000 * len(ACCOUNTS) / busiest)
    assert "runs out first: the busiest primary" in "\n".join(
        report(deployment(hosts=100), costs, None)
    )


def test_slow_gateway_answers_make_the_workers_run_out_first():
    """A process keeps at most its threads in flight: at 2 s a call, 50 sends/s each."""
    costs = Costs(latency_s=2.0)
    _, _, workers = ceilings(deployment(primaries=50, hosts=2, cores=4), costs)
    assert workers.sends_per_s == pytest.approx(2 * 4 * 100 / 2.0)


def test_what_is_needed_carries_the_rate_and_one_less_does_not():
    """The fewest primaries and hosts: with one fewer of either, a ceiling is below the rate."""
    rate = 15_000.0
    costs = Costs(min_replicas=True)
    primaries, hosts = needed(deployment(), costs, rate)
    assert primaries is not None
    fits = deployment(primaries=primaries, hosts=hosts)
    _, primary, workers = ceilings(fits, costs)
    assert min(primary.sends_per_s, workers.sends_per_s) >= rate
    _, short_primary, _ = ceilings(deployment(primaries=primaries - 1), costs)
    _, _, short_workers = ceilings(deployment(hosts=hosts - 1), costs)
    assert short_primary.sends_per_s < rate
    assert short_workers.sends_per_s < rate
