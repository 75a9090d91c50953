"""What a failed delivery does to its job, worked out before it reaches Redis: pure, no I/O.

The routing table's ``[delivery]`` part names an action per WhatsApp error code; the settings
give it its numbers (``ReceiptTimes``). ``failure_terms`` turns the two into the terms a
``failed`` status carries with its action to ``delivery.lua``, which applies them to the job it
finds: the delays are worked out here, once, and the script only picks the one the job has come
to.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.send.routing import ReceiptRouting, ReceiptRule
from worker.settings import Settings
from worker.store.receipts import FailureTerms, ReceiptAction

# Meta's per-user marketing limit (131049) is retried no later than a day after.
MARKETING_CAP_S = 86_400.0


# About how long WhatsApp wants between two messages to one recipient (its pair rate limit).
WHATSAPP_PAIR_INTERVAL_S = 6.0


@dataclass(frozen=True)
class ReceiptTimes:
    """The settings a failed delivery's plan takes its numbers from (``receipt_times``: their
    defaults are the settings' own, declared there once)."""

    pair_interval_s: float
    marketing_retry_s: float
    standing_pause_s: float
    max_attempts: int
    max_reschedules: int


def marketing_delay_s(previous: int, *, first_s: float, cap_s: float = MARKETING_CAP_S) -> float:
    """How long a job waits after its ``previous``-th earlier 131049 (0 for the first one):
    ``first_s`` doubled that many times, never more than ``cap_s``."""
    # Past 2^64 the power overflows a float; the cap was reached long before.
    return cap_s if previous >= 64 else min(cap_s, first_s * 2**previous)


def marketing_delays_s(*, first_s: float, cap_s: float = MARKETING_CAP_S) -> tuple[float, ...]:
    """Every distinct delay of ``marketing_delay_s``, in order, the cap last: the job's n-th
    131049 waits the n-th, and the last one after that."""
    delays = [marketing_delay_s(0, first_s=first_s, cap_s=cap_s)]
    while delays[-1] < cap_s:
        delays.append(marketing_delay_s(len(delays), first_s=first_s, cap_s=cap_s))
    return tuple(delays)


def failure_terms(rule: ReceiptRule, times: ReceiptTimes) -> FailureTerms:
    """The terms a failed status carries with its rule's action.

    ``reschedule`` with ``pair_interval`` (131056) waits ``PAIR_INTERVAL_S`` (WhatsApp's 6 s
    when pacing is off) and uses no attempt
    (it counts as a reschedule, capped as the Gateway's RATE_001 is); with ``marketing`` (131049)
    the delays grow and the call was an attempt: at ``MAX_ATTEMPTS`` the job is parked
    ``retries_exhausted``. ``pause_bulk`` pauses the account's bulk lane and parks the job.
    """
    action = ReceiptAction(rule.action)
    if action is ReceiptAction.PARK:
        return FailureTerms(reason=rule.park_reason.value)
    if action is ReceiptAction.PAUSE_BULK:
        return FailureTerms(pause_s=times.standing_pause_s)
    if action is ReceiptAction.RESCHEDULE and rule.delay == "marketing":
        delays = marketing_delays_s(first_s=times.marketing_retry_s)
        return FailureTerms(delays_s=delays, uses_attempt=True, limit=times.max_attempts)
    if action is ReceiptAction.RESCHEDULE:
        # With pacing off, WhatsApp's own interval: sent again at once, it would fail again.
        delays = (times.pair_interval_s or WHATSAPP_PAIR_INTERVAL_S,)
        paced = times.pair_interval_s > 0
        return FailureTerms(delays_s=delays, limit=times.max_reschedules, slow_pair=paced)
    return FailureTerms()


@dataclass(frozen=True)
class ReceiptRules:
    """The ``[delivery]`` routing with the settings' numbers: what each failed status does."""

    routing: ReceiptRouting
    times: ReceiptTimes

    def for_code(self, code: int | None) -> tuple[ReceiptAction, FailureTerms]:
        rule = self.routing.rule_for(code)
        return ReceiptAction(rule.action), failure_terms(rule, self.times)


def receipt_times(settings: Settings) -> ReceiptTimes:
    """The settings' numbers a failed delivery's terms take."""
    return ReceiptTimes(
        pair_interval_s=settings.pair_interval_s,
        marketing_retry_s=settings.marketing_retry_s,
        standing_pause_s=settings.standing_pause_s,
        max_attempts=settings.max_attempts,
        max_reschedules=settings.max_reschedules,
    )
