"""The routing table's [delivery] part: failed deliveries by WhatsApp error code."""

from __future__ import annotations

import pytest

from worker.errors import ConfigError
from worker.send.routing import (
    KNOWN_WHATSAPP_CODES,
    ReceiptRouting,
    ReceiptRule,
    counted_undelivered_codes,
    load_routing_table,
    undelivered_code,
)


def test_the_shipped_table_parks_every_failed_delivery_by_default():
    """Without a rule for the code, a failed delivery is parked."""
    delivery = load_routing_table().delivery
    assert delivery.rule_for(131026).action == "park"
    assert delivery.rule_for(None).action == "park"


def test_a_code_rule_wins_over_the_default(tmp_path):
    """[delivery.codes] 131049 = drop applies to 131049 only."""
    table = tmp_path / "routing.toml"
    table.write_text(
        '[default]\naction = "park"\n[delivery]\ndefault = { action = "park" }\n'
        '[delivery.codes]\n131049 = { action = "drop" }\n'
    )
    delivery = load_routing_table(table).delivery
    assert delivery.rule_for(131049).action == "drop"
    assert delivery.rule_for(131026).action == "park"


@pytest.mark.parametrize(
    "part",
    [
        '[delivery]\ndefault = { action = "halt" }\n',
        '[delivery.codes]\nWA_1 = { action = "park" }\n',
        "[delivery]\nunknown = 1\n",
    ],
)
def test_a_bad_delivery_part_is_refused_naming_it(tmp_path, part):
    """Unknown actions, non-numeric codes and unknown keys are a ConfigError."""
    table = tmp_path / "routing.toml"
    table.write_text('[default]\naction = "park"\n' + part)
    with pytest.raises(ConfigError, match="delivery"):
        load_routing_table(table)


def test_undelivered_codes_name_the_whatsapp_code():
    """WA_<code>, WA_UNKNOWN without one."""
    assert undelivered_code(131026) == "WA_131026"
    assert undelivered_code(None) == "WA_UNKNOWN"


def test_failed_deliveries_are_counted_by_the_known_codes_and_those_the_routing_names():
    """Metric labels for failed deliveries: every documented WhatsApp code and every code the
    routing table names, each as its undelivered code; nothing else (a payload cannot add
    series)."""
    routing = ReceiptRouting(codes={"131056": ReceiptRule(action="drop")})
    counted = counted_undelivered_codes(routing)
    assert counted == {undelivered_code(code) for code in (*KNOWN_WHATSAPP_CODES, 131056)}
    assert {"WA_131026", "WA_131056", "WA_132015"} <= counted
    assert "WA_999" not in counted
    assert counted_undelivered_codes(ReceiptRouting()) == {
        undelivered_code(code) for code in KNOWN_WHATSAPP_CODES
    }
