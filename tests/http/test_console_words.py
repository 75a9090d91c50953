"""The console's words, decided without I/O: history lines, delivery errors, each incident's
next step, the runbook sections it links, and the chart's shapes."""

from __future__ import annotations

import pytest

from worker.http.console.chart import PANEL_HEIGHT, build_chart
from worker.http.console.chartdata import BUCKET_S, SENT, Bucket
from worker.http.console.jobtext import collapse_waits, delivery_error_text
from worker.http.console.nextsteps import next_steps
from worker.http.console.runbooks import SECTIONS, parse_runbooks
from worker.observe.incidents import Runbook
from worker.observe.status import AccountState
from worker.store.switches import OPERATOR, Breaker, Halt

pytestmark = pytest.mark.unit


def wait(at: str, action: str = "breaker_wait") -> dict:
    return {"at": at, "event": "wait", "code": None, "action": action, "delay_s": 1.0}


def test_a_run_of_waits_is_one_line():
    """33 breaker waits between an enqueue and a send are one row (33 times, from the first to the
    last); a wait of another kind starts its own row."""
    history = [
        {"at": "t0", "event": "enqueued"},
        *[wait(f"t{i}") for i in range(1, 34)],
        wait("t34", "rate_wait"),
        {"at": "t35", "event": "attempt", "code": "OK", "action": "sent"},
    ]
    rows = collapse_waits(history)
    assert [row.event for row in rows] == ["enqueued", "wait", "wait", "attempt"]
    assert rows[1].times == 33
    assert rows[1].words == "waited behind the billing breaker \u00d733, from t1 to t33"
    assert rows[2].words == "waited for a rate-limit slot"
    assert rows[3].words == ""


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (
            {"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable"},
            "131026 Message undeliverable",
        ),
        (
            {"code": 131047, "title": "Re-engagement message", "details": "More than 24 hours"},
            "131047 Re-engagement message: More than 24 hours",
        ),
        ({"code": 1}, "1"),
        (None, ""),
    ],
)
def test_a_delivery_error_is_a_line_of_text(error, text):
    """A failed delivery's error reads as code, title and each further text once."""
    assert delivery_error_text(error) == text


def state(**changes) -> AccountState:
    return AccountState(
        **{"halt": None, "breaker": None, "cooldown_until": None, "held": 0, **changes}
    )


@pytest.mark.parametrize(
    ("account", "incident", "says", "runbook"),
    [
        (
            state(halt=Halt("AUTH_001", "API Key not found", 1.0)),
            "halted (AUTH_001)",
            "Fix the account's API key",
            Runbook.HALTED,
        ),
        (
            state(halt=Halt("MANUAL", "pause", 1.0, by=OPERATOR)),
            "halted (MANUAL)",
            "Resume the account once the reason above is dealt with",
            Runbook.HALTED,
        ),
        (
            state(breaker=Breaker(1.0, "BILL_001", half_open=False)),
            "billing breaker open (BILL_001)",
            "Top up the balance: the breaker closes by itself on its next probe",
            Runbook.BILLING,
        ),
        (
            state(cooldown_until=200.0),
            "cooling down (RATE_001)",
            "sending resumes by itself",
            Runbook.RATE_LIMITED,
        ),
        (
            state(bulk_paused_until=200.0),
            "bulk paused (131048 / 130429)",
            "bulk jobs wait until the pause ends",
            Runbook.STANDING,
        ),
    ],
)
def test_each_incident_says_what_to_do_next(account, incident, says, runbook):
    """Each open incident has one next step in words and a runbook section that exists."""
    (step,) = next_steps(account, now=100.0)
    assert step.incident == incident
    assert says in step.step
    assert step.runbook is runbook
    assert runbook.value in {section.anchor for section in SECTIONS}


def test_no_incident_no_step():
    """An account with nothing open, or a cooldown already over, has no next step."""
    assert next_steps(state(cooldown_until=50.0), now=100.0) == []
    assert next_steps(state(bulk_paused_until=50.0), now=100.0) == []


def test_runbook_sections_keep_their_commands_and_anchors():
    """Sections are anchored as GitHub anchors headings; commands stay preformatted; a link
    shows its words."""
    sections = parse_runbooks(
        "# Runbooks\n\n## Balance ran out (BILL_001)\n\nTop up, see [the page](x.md#y).\n\n"
        "```\n$ msgworker dlq replay --code BILL_001\n```\n"
    )
    (section,) = sections
    assert section.anchor == "balance-ran-out-bill_001"
    assert [(b.kind, b.text) for b in section.blocks] == [
        ("p", "Top up, see the page."),
        ("pre", "$ msgworker dlq replay --code BILL_001"),
    ]


def test_the_chart_stacks_answers_and_scales_to_a_round_top():
    """Sends per second on a round scale; answers stacked per bucket, sent first, each bar's
    height its share of the round top."""
    buckets = [
        Bucket(1000, {SENT: 70, "BILL_001": 10}),
        Bucket(1000 + BUCKET_S, {}),
        Bucket(1000 + 2 * BUCKET_S, {SENT: 30}),
    ]
    chart = build_chart(buckets)
    assert chart.peak_per_s == 10  # 7/s rounds up to 10
    assert chart.peak_answers == 100  # 80 rounds up to 100
    assert [bar.title for bar in chart.bars] == [
        "OK 70 in 10 s",
        "BILL_001 10 in 10 s",
        "OK 30 in 10 s",
    ]
    ok, bill, _ = chart.bars
    assert ok.height == pytest.approx(PANEL_HEIGHT * 0.7)
    assert bill.y + bill.height == pytest.approx(ok.y)  # stacked on top of the sends
    assert chart.legend[0][0] == SENT
    assert not chart.empty
    assert build_chart([Bucket(1000, {})]).empty
