"""What the operator does next about each open incident of an account, in one sentence, and the
runbook section that says more. Pure: decided from the account's state, nothing read here."""

from __future__ import annotations

from dataclasses import dataclass

from worker.observe.incidents import Runbook
from worker.observe.status import AccountState


@dataclass(frozen=True)
class NextStep:
    """One open incident: what it is, what to do about it, where the runbook says more."""

    incident: str
    step: str
    runbook: Runbook


KEY_CODES = frozenset({"AUTH_001", "AUTH_002", "AUTH_003"})


def _halt_step(state: AccountState) -> NextStep | None:
    halt = state.halt
    if halt is None:
        return None
    if halt.by_operator:
        step = (
            "Resume the account once the reason above is dealt with: its held jobs then go out, "
            "each once."
        )
    elif halt.code in KEY_CODES:
        step = (
            "Fix the account's API key (rotate it in its key file, or set the new key and restart "
            "the workers): the next probe, within a minute, resumes the account by itself."
        )
    elif halt.code == "BILL_002":
        step = (
            "Give the key a billing account with Connexease: the next probe resumes the account "
            "by itself once the Gateway accepts its calls."
        )
    elif halt.code == "WABA_001":
        step = (
            "Fix the WhatsApp Business account's credentials with Connexease: the next probe "
            "resumes the account by itself once the Gateway accepts its calls."
        )
    else:
        step = (
            "Fix what the Gateway named above: the next probe resumes the account by itself once "
            "the Gateway accepts its calls."
        )
    return NextStep(f"halted ({halt.code})", step, Runbook.HALTED)


def next_steps(state: AccountState, *, now: float) -> list[NextStep]:
    """The account's open incidents, most urgent first, each with its next step."""
    steps = [step for step in (_halt_step(state),) if step is not None]
    if state.breaker is not None:
        steps.append(
            NextStep(
                f"billing breaker open ({state.breaker.code})",
                "Top up the balance: the breaker closes by itself on its next probe, and jobs "
                "waiting behind it go out; then replay the BILL_001 dead letters.",
                Runbook.BILLING,
            )
        )
    if state.cooldown_until is not None and state.cooldown_until > now:
        steps.append(
            NextStep(
                "cooling down (RATE_001)",
                "Nothing to do now: the Gateway asked for a pause and sending resumes by itself "
                "when it ends. If it keeps coming back, set the account's real rate limits.",
                Runbook.RATE_LIMITED,
            )
        )
    if state.bulk_paused_until is not None and state.bulk_paused_until > now:
        steps.append(
            NextStep(
                "bulk paused (131048 / 130429)",
                "Meta doubts the sender: bulk jobs wait until the pause ends, high and normal go "
                "on. Check the number's quality rating before sending marketing again.",
                Runbook.STANDING,
            )
        )
    return steps
