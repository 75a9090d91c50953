"""The accounts a deployment knows: jobs and commands naming any other account are refused."""

from __future__ import annotations

from worker.store.keys import DEFAULT_ACCOUNT


def known_accounts() -> frozenset[str]:
    """The configured account names; one account, ``default``, until several keys are set up."""
    return frozenset({DEFAULT_ACCOUNT})


def unknown_account_message(name: str, known: frozenset[str]) -> str:
    """The one-line refusal for an account the deployment does not know, naming the known ones."""
    return f"unknown account {name!r} (known: {', '.join(sorted(known))})"
