"""What an operator does to an account, the same from the CLI and from the web console."""

from __future__ import annotations

import time

from worker.observe.incidents import AlertKind
from worker.service.runtime import Runtime
from worker.store.history import history_event
from worker.store.templates import HeldBy, HoldReason, Released, hold_record

# The code an operator's template hold is recorded with.
MANUAL_HOLD_CODE = "MANUAL"


def halt_account(runtime: Runtime, account: str, *, reason: str) -> bool:
    """Stop all sending of the account now; False when it was already halted."""
    return runtime.switches.halt(account, reason=reason)


def resume_account(runtime: Runtime, account: str) -> int:
    """Lift the account's halt, release its held jobs and resolve the halt's alert; returns how
    many jobs were released."""
    released = runtime.switches.resume(account)
    runtime.incidents.resolve(AlertKind.HALT, account, summary="Sending resumed by an operator")
    return released


def hold_template(runtime: Runtime, account: str, name: str, language: str) -> bool:
    """Hold the account's jobs using this template (each at its begin, no Gateway call) until
    a release; False when it was held already."""
    record = hold_record(
        HoldReason.OPERATOR, code=MANUAL_HOLD_CODE, by=HeldBy.OPERATOR, now=time.time()
    )
    return runtime.templates.hold(account, name, language, record)


def release_template(runtime: Runtime, account: str, name: str, language: str) -> Released:
    """Release the template's hold: each job held behind it is put back, due now, sent once."""
    now = time.time()
    event = history_event(now, "released", action="template_release")
    return runtime.templates.release(account, name, language, now=now, event=event)
