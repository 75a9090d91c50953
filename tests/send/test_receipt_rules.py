"""What a failed delivery does, decided before Redis: the shipped [delivery] codes, the terms
each action carries, and the marketing retry's growing delays with their cap."""

from __future__ import annotations

import itertools

import pytest

from worker.errors import ConfigError
from worker.send.receipt_rules import (
    MARKETING_CAP_S,
    ReceiptRules,
    ReceiptTimes,
    marketing_delay_s,
    marketing_delays_s,
)
from worker.send.routing import KNOWN_WHATSAPP_CODES, load_routing_table
from worker.store.receipts import FailureTerms, ReceiptAction

TIMES = ReceiptTimes(
    pair_interval_s=6,
    marketing_retry_s=3600,
    standing_pause_s=600,
    max_attempts=8,
    max_reschedules=100,
)


@pytest.fixture(scope="module")
def rules():
    return ReceiptRules(load_routing_table().delivery, TIMES)


@pytest.mark.parametrize(
    ("code", "action", "terms"),
    [
        (131026, ReceiptAction.PARK, FailureTerms("undelivered")),
        (131047, ReceiptAction.PARK, FailureTerms("outside_window")),
        (131050, ReceiptAction.PARK, FailureTerms("opted_out")),
        (131048, ReceiptAction.PAUSE_BULK, FailureTerms(pause_s=600)),
        (130429, ReceiptAction.PAUSE_BULK, FailureTerms(pause_s=600)),
        (131056, ReceiptAction.RESCHEDULE, FailureTerms(delays_s=(6,), limit=100, slow_pair=True)),
        (
            131049,
            ReceiptAction.RESCHEDULE,
            FailureTerms(
                delays_s=(3600, 7200, 14400, 28800, 57600, 86400), uses_attempt=True, limit=8
            ),
        ),
        (None, ReceiptAction.PARK, FailureTerms("undelivered")),
    ],
)
def test_the_shipped_table_routes_each_code(rules, code, action, terms):
    """Each code Meta answers about a recipient or the sender's standing has its own action."""
    assert rules.for_code(code) == (action, terms)


def test_every_routed_code_is_counted_under_its_own_label():
    """The routed codes are metric labels, not OTHER."""
    routed = {int(code) for code in load_routing_table().delivery.codes}
    assert routed <= KNOWN_WHATSAPP_CODES


@pytest.mark.parametrize(
    ("previous", "delay_s"),
    [(0, 3600), (1, 7200), (2, 14400), (4, 57600), (5, 86400), (9, 86400), (10_000, 86400)],
)
def test_marketing_delays_double_from_the_first_up_to_a_day(previous, delay_s):
    """1 h, 2 h, 4 h … never more than 24 h, however many came before."""
    assert marketing_delay_s(previous, first_s=3600) == delay_s


def test_the_delays_a_status_carries_end_at_the_cap():
    """From a small first delay, every doubling is listed and the cap is the last."""
    delays = marketing_delays_s(first_s=1)
    assert delays[:3] == (1, 2, 4)
    assert delays[-1] == MARKETING_CAP_S
    assert all(b == min(2 * a, MARKETING_CAP_S) for a, b in itertools.pairwise(delays))
    assert marketing_delays_s(first_s=MARKETING_CAP_S) == (MARKETING_CAP_S,)


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ('{ action = "reschedule" }', "needs a delay"),
        ('{ action = "park", delay = "marketing" }', "needs a delay"),
        ('{ action = "drop", reason = "opted_out" }', "reason is only for park"),
        ('{ action = "park", reason = "lost" }', "reason"),
        ('{ action = "reschedule", delay = "soon" }', "delay"),
    ],
)
def test_a_delivery_rule_with_the_wrong_fields_is_refused(tmp_path, rule, problem):
    """A reschedule without a delay, a delay or reason on the wrong action: refused at load."""
    table = tmp_path / "routing.toml"
    table.write_text(f'[default]\naction = "park"\n[delivery.codes]\n131049 = {rule}\n')
    with pytest.raises(ConfigError, match=problem):
        load_routing_table(table)
