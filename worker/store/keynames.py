"""The keys a job's transitions take, by the names their scripts read them by (``protocol.py``):
an account's named once and kept, since they never change, a job's named at each call."""

from __future__ import annotations

from worker.store.claims import Address
from worker.store.keys import LANES, Keys, lane_of


class KeyNames:
    """Names the keys of a job's transitions under ``keys``' prefix."""

    def __init__(self, keys: Keys) -> None:
        self._keys = keys
        self._accounts: dict[str, dict[str, str]] = {}
        self._lanes: dict[str, dict[str, str]] = {}

    def of(self, job_id: str, address: Address) -> dict[str, str]:
        """Every key a transition of the job may take (each script picks its own): the job's,
        its idempotency key's, its account's, and the deployment's."""
        k, account, key = self._keys, address.account, address.key
        if account not in self._accounts:
            self._name_account(account)
        return {
            **self._accounts[account],
            "job": k.job(job_id),
            "history": k.history(job_id),
            "idempotency": k.idempotency(account, key),
            "ledger": k.ledger(account, key),
            "claim": k.claim(account, key),
            "dead_letter": k.dead_letter(job_id),
            "due": self._lanes[account][lane_of(address.priority)],
        }

    def _name_account(self, account: str) -> None:
        k = self._keys
        self._lanes[account] = {lane: k.due(account, lane) for lane in LANES}
        self._accounts[account] = {
            "halt": k.halt(account),
            "held": k.held(account),
            "breaker": k.breaker(account),
            "breaker_probe": k.breaker_probe(account),
            "cooldown": k.cooldown(account),
            "template_holds": k.template_holds(account),
            "template_held_jobs": k.template_held_jobs(account),
            "pairs": k.pairs(account),
            "limits": k.limits(account),
            "sec_window": k.window(account, "sec"),
            "min_window": k.window(account, "min"),
            "dispatched": k.dispatched(account),
            "bulk_paused": k.bulk_paused(account),
            # The account's retries_exhausted incident (not Keys.exhausted, its count).
            "exhausted": k.incident("retries_exhausted", account),
            "leases": k.leases,
            "scheduled_accounts": k.scheduled_accounts,
            "early_arrivals": k.early_arrivals,
            "dead_letter_index": k.dead_letter_index,
            "dead_letter_counts": k.dead_letter_counts,
        }
