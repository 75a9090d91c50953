"""Group sizes by the pace of calls: large groups while answers are quick, none while slow."""

from __future__ import annotations

import pytest

from worker.send.pace import GROUP_SPAN_S, MAX_GROUP, CallPace, group_size


def test_the_running_mean_starts_at_the_first_call_and_follows_the_recent_ones():
    pace = CallPace()
    assert pace.mean_s is None
    pace.record(0.3)
    assert pace.mean_s == pytest.approx(0.3)
    for _ in range(500):
        pace.record(0.002)
    assert pace.mean_s == pytest.approx(0.002, abs=1e-4)


@pytest.mark.parametrize(
    ("jobs", "consumers", "call_s", "size"),
    [
        (40, 100, None, 1),  # no call seen yet: one job per message for many consumers
        (40, 100, 0.3, 1),  # slow answers: a group would hold its last jobs back
        (40, 100, 0.002, MAX_GROUP),  # quick answers: as large as allowed
        (40, 100, GROUP_SPAN_S / 3, 3),  # three calls fit the span
        (500, 16, 0.3, MAX_GROUP),  # a long queue groups whatever the pace
        (100, 16, None, 7),  # enough for every consumer to have work
    ],
)
def test_group_size(jobs, consumers, call_s, size):
    assert group_size(jobs, consumers, call_s) == size


@pytest.mark.parametrize(
    ("jobs", "accounts", "size"),
    [
        (40, 1, MAX_GROUP),  # one account: as large as quick calls allow
        (40, 10, 4),  # ten accounts: a group each
        (12, 10, 1),  # fewer than two jobs an account: one a group, twelve groups
        (400, 10, MAX_GROUP),  # a long batch: the cap
    ],
)
def test_there_are_never_fewer_groups_than_accounts(jobs, accounts, size):
    assert group_size(jobs, 100, 0.002, accounts) == size


def test_there_are_never_more_groups_for_the_accounts_than_consumers():
    """Ten accounts' 40 jobs for 4 consumers: 4 groups (of 13, 13, 13 and 1), not ten."""
    assert group_size(40, 4, 0.002, 10) == 13
