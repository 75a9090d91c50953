"""What an operator does to an account, the same from the CLI and from the web console."""

from __future__ import annotations

from worker.observe.incidents import AlertKind
from worker.service.runtime import Runtime


def halt_account(runtime: Runtime, account: str, *, reason: str) -> bool:
    """Stop all sending of the account now; False when it was already halted."""
    return runtime.switches.halt(account, reason=reason)


def resume_account(runtime: Runtime, account: str) -> int:
    """Lift the account's halt, release its held jobs and resolve the halt's alert; returns how
    many jobs were released."""
    released = runtime.switches.resume(account)
    runtime.incidents.resolve(AlertKind.HALT, account, summary="Sending resumed by an operator")
    return released
