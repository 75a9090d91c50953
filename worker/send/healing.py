"""Self-healing halts: an account halted by the Gateway's answer (a rejected key, no billing
account, broken WABA credentials) resumes by itself once its key works again.

Every ``interval_s``, across every worker, one probe per halted account: one ``is_fake=true``
call (the Gateway checks the key and delivers nothing) with one of the held jobs' payloads and
the account's key as it is now, read again from its variable or file. Any answer but a halting
one ends the halt the way ``msgworker resume`` does, the released jobs' history says
``auto_resumed``, and the halt alert resolves. No answer (a timeout, a refused connection) proves
nothing: the halt stays until the next probe. An operator's halt is never probed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from worker.accounts import Account
from worker.errors import GatewayError, GatewayUnreachable
from worker.logs import get_logger
from worker.observe.incidents import AlertKind, Incidents
from worker.outcome import Outcome
from worker.send.gateway import GatewayClient
from worker.store.switches import Switches

log = get_logger(__name__)


class HaltHealer:
    """Probes the halts the Gateway caused and lifts those whose key works again."""

    def __init__(
        self,
        switches: Switches,
        incidents: Incidents,
        accounts: Mapping[str, Account],
        gateway: Callable[[Account], GatewayClient],
        is_halting: Callable[[Outcome], bool],
        *,
        interval_s: float,
        key_settle_s: float = 1.0,
    ) -> None:
        """``gateway`` makes a client reading the key afresh at each call; ``key_settle_s`` is
        how long the sending path may keep using a key it read (see ``FreshKey``)."""
        self._switches = switches
        self._incidents = incidents
        self._accounts = accounts
        self._gateways = {name: gateway(account) for name, account in accounts.items()}
        self._is_halting = is_halting
        self._interval_s = interval_s
        self._key_settle_s = key_settle_s

    def probe_all(self, stop: threading.Event | None = None) -> list[str]:
        """Probe each account whose Gateway-caused halt is due a probe; returns those resumed."""
        resumed, now = [], time.time()
        for name in self._accounts:
            halt = self._switches.halted(name)
            if halt is None or halt.by_operator:
                continue
            if halt.since is not None and now < halt.since + self._interval_s:
                continue  # the first probe comes one interval after the halt
            if not self._switches.probe_due(name, self._interval_s):
                continue
            if self.probe(name, stop):
                resumed.append(name)
        return resumed

    def probe(self, name: str, stop: threading.Event | None = None) -> bool:
        """One probe of the account's key; True when the halt was lifted."""
        message = self._switches.held_message(name)
        if message is None:  # nothing held, nothing to release: the next held job is probed
            return False
        try:
            outcome = self._gateways[name].send(message, fake=True).outcome
        except GatewayUnreachable as error:
            log.info("halt.probe_unanswered", account=name, code=error.code)
            return False
        except GatewayError as error:
            outcome = error.outcome
        if self._is_halting(outcome):
            log.info("halt.probe_refused", account=name, code=outcome.code)
            return False
        # Every worker's copy of the key is at most key_settle_s old: wait until none can be
        # older than the one that just worked, so no released job goes out with the old key.
        (stop or threading.Event()).wait(self._key_settle_s)
        released = self._switches.auto_resume(name)
        if released is None:  # an operator halted it meanwhile: theirs to resume
            return False
        log.warning("account.auto_resumed", account=name, code=outcome.code, released=released)
        self._incidents.resolve(
            AlertKind.HALT,
            name,
            summary=f"Sending resumed by itself: the Gateway accepts the key again "
            f"({released} held job(s) released)",
        )
        return True


def keep_healing(healer: HaltHealer, stop: threading.Event, *, tick_s: float) -> None:
    """Probe until ``stop`` is set; a failing Redis or Gateway is logged and tried again."""
    while not stop.wait(tick_s):
        try:
            healer.probe_all(stop)
        except Exception as exc:  # noqa: BLE001 - the healer must outlive any outage
            log.warning("halt.probe_failed", error=type(exc).__name__)
