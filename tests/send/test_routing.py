"""The routing decision: every documented code, group, status class and transport failure."""

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.errors import ConfigError
from worker.outcome import Outcome
from worker.send.routing import (
    Action,
    Attempt,
    ParkReason,
    Policy,
    backoff_delay_s,
    decide,
    default_routing_path,
    load_routing_table,
)

TABLE = load_routing_table()
POLICY = Policy(table=TABLE, max_attempts=8, backoff_base_s=2.0, backoff_cap_s=300.0)
FIRST = Attempt(calls=1)

# The Gateway's documented codes with their status, group and the action the shipped table gives them.
DOCUMENTED = [
    ("AUTH_001", 401, "UNAUTHORIZED", Action.HALT, None),
    ("AUTH_002", 401, "UNAUTHORIZED", Action.HALT, None),
    ("AUTH_003", 401, "UNAUTHORIZED", Action.HALT, None),
    ("AUTH_004", 500, "INTERNAL_ERROR", Action.BACKOFF, None),
    ("AUTH_005", 500, "INTERNAL_ERROR", Action.BACKOFF, None),
    ("WABA_001", 401, "UNAUTHORIZED", Action.HALT, None),
    ("BILL_001", 402, "PAYMENT_REQUIRED", Action.PARK, ParkReason.BILLING),
    ("BILL_002", 400, "BAD_REQUEST", Action.HALT, None),
    ("RATE_001", 429, "TOO_MANY_REQUESTS", Action.RESCHEDULE, None),
    ("GW_001", 400, None, Action.PARK, ParkReason.PERMANENT),
]


@pytest.mark.parametrize(("code", "status", "group", "action", "reason"), DOCUMENTED)
def test_documented_code_takes_its_path(code, status, group, action, reason):
    """Each documented code routes as the shipped routing table says."""
    decision = decide(Outcome(code=code, group=group, status=status), FIRST, POLICY)
    assert decision.action is action
    assert decision.reason == reason


@pytest.mark.parametrize("code", [row[0] for row in DOCUMENTED])
def test_documented_code_has_an_explicit_table_entry(code):
    """No documented code may fall through to a group or status rule by accident."""
    assert code in TABLE.codes


def test_auth_004_backs_off_even_with_a_401_style_group_nearby():
    """AUTH_004 is an AUTH code in group INTERNAL_ERROR: it backs off and never halts."""
    for status in (500, 401):
        decision = decide(
            Outcome(code="AUTH_004", group="INTERNAL_ERROR", status=status), FIRST, POLICY
        )
        assert decision.action is Action.BACKOFF


@pytest.mark.parametrize(
    ("group", "action", "reason"),
    [
        ("TOO_MANY_REQUESTS", Action.RESCHEDULE, None),
        ("PAYMENT_REQUIRED", Action.PARK, ParkReason.BILLING),
        ("UNAUTHORIZED", Action.HALT, None),
        ("INTERNAL_ERROR", Action.BACKOFF, None),
        ("VALIDATION", Action.PARK, ParkReason.PERMANENT),
        ("BAD_REQUEST", Action.PARK, ParkReason.PERMANENT),
    ],
)
def test_unknown_code_routes_by_its_group(group, action, reason):
    """A code the table does not know falls back to its group, whatever the status."""
    decision = decide(Outcome(code="NEW_777", group=group, status=418), FIRST, POLICY)
    assert (decision.action, decision.reason) == (action, reason)


@pytest.mark.parametrize(
    ("status", "action", "reason"),
    [
        (429, Action.RESCHEDULE, None),
        (402, Action.PARK, ParkReason.BILLING),
        (401, Action.HALT, None),
        (403, Action.PARK, ParkReason.PERMANENT),
        (404, Action.PARK, ParkReason.PERMANENT),
        (400, Action.PARK, ParkReason.PERMANENT),
        (500, Action.BACKOFF, None),
        (502, Action.BACKOFF, None),
        (503, Action.BACKOFF, None),
        (504, Action.BACKOFF, None),
        (599, Action.BACKOFF, None),
        (200, Action.PARK, ParkReason.AMBIGUOUS),
        (302, Action.PARK, ParkReason.PERMANENT),
    ],
)
def test_codeless_answer_routes_by_status_then_class(status, action, reason):
    """HTTP_<status> outcomes with no group route by exact status, then by class."""
    decision = decide(Outcome(code=f"HTTP_{status}", status=status), FIRST, POLICY)
    assert (decision.action, decision.reason) == (action, reason)


def test_unknown_group_with_unknown_status_takes_the_default():
    """Nothing matches: the default is a permanent park."""
    decision = decide(Outcome(code="ODD_1", group="ODD_GROUP", status=302), FIRST, POLICY)
    assert (decision.action, decision.reason) == (Action.PARK, ParkReason.PERMANENT)


@pytest.mark.parametrize("code", ["CONNECTION", "TIMEOUT"])
@pytest.mark.parametrize("ambiguous", [False, True])
def test_transport_failures_back_off(code, ambiguous):
    """Connect failures and, by default, ambiguous lost answers back off."""
    decision = decide(Outcome(code=code, ambiguous=ambiguous), FIRST, POLICY)
    assert decision.action is Action.BACKOFF


def test_ambiguous_timeout_can_be_configured_at_most_once(tmp_path):
    """transport.ambiguous = park makes a lost answer park as ambiguous; refusals still retry."""
    path = tmp_path / "routing.toml"
    at_least_once = 'ambiguous = { action = "backoff" }'
    source = default_routing_path().read_text()
    assert at_least_once in source
    path.write_text(
        source.replace(at_least_once, 'ambiguous = { action = "park", reason = "ambiguous" }')
    )
    policy = Policy(table=load_routing_table(path))
    lost = decide(Outcome(code="TIMEOUT", ambiguous=True), FIRST, policy)
    assert (lost.action, lost.reason) == (Action.PARK, ParkReason.AMBIGUOUS)
    refused = decide(Outcome(code="CONNECTION"), FIRST, policy)
    assert refused.action is Action.BACKOFF


@pytest.mark.parametrize(
    ("code", "action"), [("CONNECTION", Action.HALT), ("TIMEOUT", Action.BACKOFF)]
)
def test_each_transport_failure_takes_its_own_entry(tmp_path, code, action):
    """CONNECTION and TIMEOUT are looked up by name: neither takes the other's entry."""
    path = tmp_path / "routing.toml"
    path.write_text(
        '[transport]\nCONNECTION = { action = "halt" }\nTIMEOUT = { action = "backoff" }\n'
        '[default]\naction = "park"\n'
    )
    policy = Policy(table=load_routing_table(path))
    assert decide(Outcome(code=code), FIRST, policy).action is action


def test_the_default_table_is_the_checkouts_config_file():
    """Run from a checkout, the table is config/routing.toml beside worker/."""
    checkout = Path(__file__).resolve().parents[2]
    assert default_routing_path().resolve() == checkout / "config" / "routing.toml"


def test_success_is_sent_and_expired_is_parked_as_expired():
    """OK is always sent; EXPIRED is always parked as expired, never retried."""
    assert decide(Outcome.ok(), FIRST, POLICY).action is Action.SENT
    expired = decide(Outcome.expired(), Attempt(calls=0), POLICY)
    assert (expired.action, expired.reason) == (Action.PARK, ParkReason.EXPIRED)


@pytest.mark.parametrize("calls", range(1, 8))
def test_backoff_delay_stays_in_full_jitter_bounds(calls):
    """The n-th retry waits within [0, min(cap, base·2^n)], n counted from 0."""
    rng = random.Random(calls)
    ceiling = min(300.0, 2.0 * 2 ** (calls - 1))
    delays = [
        decide(Outcome(code="HTTP_502", status=502), Attempt(calls=calls), POLICY, rng=rng).delay_s
        for _ in range(200)
    ]
    assert all(0.0 <= d <= ceiling for d in delays)
    assert max(delays) > ceiling * 0.8  # the jitter uses the whole range, not a sliver


@given(
    retry=st.integers(min_value=0, max_value=10_000),
    base=st.floats(0.01, 60),
    cap=st.floats(0.01, 3600),
)
def test_backoff_delay_never_exceeds_cap_or_overflows(retry, base, cap):
    """Any retry number, base and cap gives a finite delay within [0, min(cap, base·2^n)]."""
    delay = backoff_delay_s(retry, base_s=base, cap_s=cap, rng=random.Random(0))
    # The exponent in integers: exact, and never an overflow in the test itself.
    ceiling = cap if base * 2 ** min(retry, 64) >= cap else base * 2**retry
    assert 0.0 <= delay <= ceiling


def test_retries_exhausted_parks_with_the_last_code():
    """The MAX_ATTEMPTS-th failed call parks as retries_exhausted instead of backing off again."""
    last = decide(Outcome(code="HTTP_502", status=502), Attempt(calls=8), POLICY)
    assert (last.action, last.reason) == (Action.PARK, ParkReason.RETRIES_EXHAUSTED)
    before = decide(Outcome(code="HTTP_502", status=502), Attempt(calls=7), POLICY)
    assert before.action is Action.BACKOFF


@pytest.mark.parametrize("retry_after", [0.5, 1.0, 60.0])
def test_reschedule_waits_retry_after_and_never_less(retry_after):
    """RATE_001 waits the Gateway's retry_after plus at most a small jitter."""
    outcome = Outcome(
        code="RATE_001", group="TOO_MANY_REQUESTS", status=429, retry_after_s=retry_after
    )
    for seed in range(50):
        delay = decide(outcome, FIRST, POLICY, rng=random.Random(seed)).delay_s
        assert retry_after <= delay <= retry_after + min(0.5, retry_after * 0.1)


def test_reschedules_do_not_use_attempts_but_have_their_own_cap():
    """A reschedule ignores MAX_ATTEMPTS; past max_reschedules the job parks."""
    outcome = Outcome(code="RATE_001", status=429, retry_after_s=1.0)
    assert decide(outcome, Attempt(calls=50, reschedules=3), POLICY).action is Action.RESCHEDULE
    capped = decide(outcome, Attempt(calls=1, reschedules=POLICY.max_reschedules), POLICY)
    assert (capped.action, capped.reason) == (Action.PARK, ParkReason.RETRIES_EXHAUSTED)


def test_rate_limit_without_retry_after_waits_one_second():
    """A 429 with no retry_after anywhere waits the default second."""
    delay = decide(
        Outcome(code="HTTP_429", status=429), FIRST, POLICY, rng=random.Random(1)
    ).delay_s
    assert 1.0 <= delay <= 1.1


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        (
            '[codes]\nRATE_001 = { action = "explode" }\n[default]\naction = "park"\n',
            "codes.RATE_001.action",
        ),
        (
            (
                '[codes]\nGW_001 = { action = "backoff", reason = "billing" }\n'
                '[default]\naction = "park"\n'
            ),
            "reason is only for park",
        ),
        (
            '[codes]\nGW_001 = { action = "park", reason = "bored" }\n[default]\naction = "park"\n',
            "codes.GW_001.reason",
        ),
        ('[statuses]\n"6xx" = { action = "park" }\n[default]\naction = "park"\n', "statuses.6xx"),
        ('[codes]\nGW_001 = { action = "park" }\n', "default"),
        ('[codez]\n[default]\naction = "park"\n', "codez"),
        ('[transport]\nDNS = { action = "park" }\n[default]\naction = "park"\n', "transport.DNS"),
        ("[codes\nbroken", "not valid TOML"),
    ],
)
def test_malformed_table_is_a_clear_config_error(tmp_path, text, mentions):
    """An unknown action, reason, key or broken TOML names the file and the entry."""
    path = tmp_path / "routing.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_routing_table(path)
    assert str(path) in str(caught.value)
    assert mentions in str(caught.value)


def test_every_problem_of_a_table_is_named_in_one_error(tmp_path):
    """Each wrong entry is named with its place and pydantic's words, joined by '; ', without
    pydantic's 'Value error, ' prefix."""
    path = tmp_path / "routing.toml"
    path.write_text('[codes]\nGW_001 = { action = "backoff", reason = "billing" }\n')
    with pytest.raises(ConfigError) as caught:
        load_routing_table(path)
    assert str(caught.value) == (
        f"routing table {path}: codes.GW_001: reason is only for park, not backoff; "
        "default: Field required"
    )


def test_missing_table_file_is_a_clear_config_error(tmp_path):
    """A routing file that does not exist is named in the error."""
    with pytest.raises(ConfigError, match="cannot read"):
        load_routing_table(tmp_path / "nope.toml")
