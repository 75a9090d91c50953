"""A job's transitions, each one atomic (Lua in ``worker/store/lua/``): begin a dispatch (claim
it and reserve its call's rate-limit slot, or say why not), look again after a wait (recheck),
hand dispatches back, and settle a claimed job as sent, retried, parked or held.

A group of dispatches (one broker message) is begun one job at a time, each just before its
call: the first by ``begin``; after a send, the next one in the same round trip as that send's
settlement (``mark_sent(..., then=...)`` returns its claim), so a group of sends costs one round
trip per job plus one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from worker.outcome import Outcome, RateLimitHeaders
from worker.store.claims import NOWHERE, Address, Claim, Execution, Opening, Verdict
from worker.store.declaration import text
from worker.store.history import history_event
from worker.store.keynames import KeyNames
from worker.store.keys import Keys
from worker.store.protocol import (
    BEGIN,
    CLAIMED_FIELDS,
    HOLD,
    PARK,
    RECHECK,
    RETRY,
    SENT,
)
from worker.store.ratelimit import RateLimit, learn_arguments
from worker.store.records import Job
from worker.store.scripts import load_script


@dataclass(frozen=True)
class EarlyStatus:
    """A delivery status that came before its send was recorded, applied when it was: serve
    kept it without counting it, so the worker counts it."""

    status: str  # sent | delivered | read | failed
    code: str  # a failed one's undelivered code (WA_131026), else ''


@dataclass(frozen=True)
class SentRecord:
    """What recording a send found: whether a billing breaker closed, whether a retries_exhausted
    incident of the account is open, the statuses that came first and were applied now, and the
    next dispatch's claim when one was begun."""

    breaker_closed: bool
    exhausted_open: bool
    early: tuple[EarlyStatus, ...] = ()
    next: Claim | None = None


class Transitions:
    """Moves jobs from state to state, each move one script; only the execution that holds a
    job's claim settles it."""

    # The benchmarks' floor what-if (bench/floor/ sets it; msgworker never does): begins reserve
    # no rate-limit slot, and a send neither learns from the headers nor keeps any record.
    floor = False

    def __init__(self, client: redis.Redis, keys: Keys, *, retention_s: float) -> None:
        self._redis = client
        self._keys = keys
        self._names = KeyNames(keys)
        self._retention_s = retention_s
        self._begin = load_script(client, BEGIN)
        self._sent = load_script(client, SENT)
        self._retry = load_script(client, RETRY)
        self._park = load_script(client, PARK)
        self._hold = load_script(client, HOLD)
        self._recheck = load_script(client, RECHECK)

    def begin(
        self,
        execution: Execution,
        *,
        now: float,
        lease_s: float,
        probe_interval_s: float,
        rate: RateLimit,
    ) -> Claim:
        """Claim a dispatched job and reserve its call slot, or say why not (see begin.lua)."""
        opening = Opening(execution, lease_s, probe_interval_s, rate)
        return self.open(opening, now=now)

    def open(self, opening: Opening, *, now: float) -> Claim:
        """``begin`` for an ``Opening``."""
        keys, args = self._opening_call(opening, now)
        return _claim(self._begin(keys=keys, args=args), opening, now)

    def addresses(self, job_ids: Sequence[str]) -> list[Address]:
        """The jobs' addresses, in one round trip (``NOWHERE`` for a job with no record)."""
        with self._redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hmget(self._keys.job(job_id), "account", "key", "priority")
            found: list[list[Any]] = pipe.execute()
        # A job written before priorities has none: '' (the normal lane), as begin reads it.
        return [
            Address(*(text(value) if value is not None else "" for value in values))
            if values[0] is not None
            else NOWHERE
            for values in found
        ]

    def _address(self, execution: Execution) -> Address:
        """The execution's job's address, read when the execution does not carry it."""
        return execution.address or self.addresses([execution.job_id])[0]

    def _opening_call(self, opening: Opening, now: float) -> tuple[list[str], list[Any]]:
        """begin.lua's KEYS and ARGV for ``opening`` (its address read first when not known)."""
        execution = opening.execution
        address = self._address(execution)
        names = self._names.of(execution.job_id, address)
        return BEGIN.keys_of(names), self._opening_arguments(opening, address, now)

    def _opening_arguments(self, opening: Opening, address: Address, now: float) -> list[Any]:
        execution = opening.execution
        return BEGIN.arguments(
            {
                "id": execution.job_id,
                "gen": execution.gen,
                "now": now,
                "lease_s": opening.lease_s,
                "execution": execution.holder,
                "probe_interval_s": opening.probe_interval_s,
                "retention_s": self._retention_s,
                "account": address.account,
                "key": address.key,
                "priority": address.priority,
                **opening.rate.limits(opening.sec_margin_ms),
                **opening.rate.pair_arguments(),
                "floor": self._floor_flag,
            }
        )

    @property
    def _floor_flag(self) -> str:
        return "1" if self.floor else "0"

    def hand_back(self, executions: Sequence[Execution], *, now: float) -> None:
        """Dispatches this worker will not begin (it is shutting down): their leases end now, so
        the next pump round of any worker dispatches them again, not half a minute later. Only
        leases still held are touched (a settled job's is gone)."""
        if executions:
            members = {f"{e.job_id}|{e.gen}": now for e in executions}
            self._redis.zadd(self._keys.leases, members, xx=True)

    def recheck(
        self, execution: Execution, job: Job, *, now: float, probe_interval_s: float
    ) -> Claim:
        """A fresh look at the switches after a wait for a slot, in one round trip (recheck.lua):
        a halt holds the job, a cooldown reschedules it, an open breaker parks it or probes."""
        # A cooldown puts the job back in its lane; a call not made gives its pair back.
        names = self._names.of(execution.job_id, self._address(execution))
        args = {
            "id": execution.job_id,
            "gen": execution.gen,
            "now": now,
            "execution": execution.holder,
            "held_event": history_event(now, "held"),
            "wait_event": history_event(now, "wait", action="cooldown_wait"),
            "probe_interval_s": probe_interval_s,
            "account": job.account,
        }
        reply = RECHECK.fields(
            self._recheck(keys=RECHECK.keys_of(names), args=RECHECK.arguments(args))
        )
        return Claim(Verdict(reply["verdict"]), "", int(reply["wait_ms"]) / 1000, job, now)

    def _settlement(
        self,
        execution: Execution,
        now: float,
        event: str,
        headers: RateLimitHeaders | None,
        arrival_ms: int | None,
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """The keys a settlement may take, by name (the answers' hash of ``now``'s second among
        them), and the arguments every settlement starts with (settle.lua). ``arrival_ms``: when
        the call reached the Gateway, in ms after its slot (None when no call was made)."""
        address, job_id = self._address(execution), execution.job_id
        names = self._names.of(job_id, address)
        names["answers"] = self._keys.answers_in_second(int(now))
        values = {
            "id": job_id,
            "gen": execution.gen,
            "now": now,
            "execution": execution.holder,
            "event": event,
            "account": address.account,
            "key": address.key,
            "priority": address.priority,
            **learn_arguments(headers or RateLimitHeaders()),
            "arrival_ms": "" if arrival_ms is None else arrival_ms,
        }
        return names, values

    def mark_sent(
        self,
        execution: Execution,
        wamid: str,
        *,
        now: float,
        headers: RateLimitHeaders | None = None,
        arrival_ms: int | None = None,
        then: Opening | None = None,
    ) -> SentRecord:
        """Record the wamid and the ledger entry; with ``then``, begin that dispatch (the next
        of the group) in the same round trip."""
        event = history_event(now, "attempt", code="OK", action="sent")
        names, values = self._settlement(execution, now, event, headers, arrival_ms)
        names.update(wamid=self._keys.wamid(wamid), early=self._keys.early_statuses(wamid))
        values.update(wamid=wamid, retention_s=self._retention_s, floor=self._floor_flag)
        next_keys, after = self._opening_call(then, now) if then else ([], [])
        reply: list[Any] = self._sent(
            keys=SENT.keys_of(names, then=next_keys), args=SENT.arguments(values, then=after)
        )
        recorded = SENT.fields(reply)
        begun = reply[len(SENT.reply) :]
        claim = _claim(begun, then, now) if then and begun else None
        closed, exhausted = recorded["breaker_closed"], recorded["exhausted_open"]
        applied = json.loads(recorded["early_applied"] or "[]")
        early = tuple(EarlyStatus(status, code) for status, code in applied)
        return SentRecord(bool(int(closed)), bool(int(exhausted)), early, claim)

    def retry(
        self,
        execution: Execution,
        *,
        now: float,
        delay_s: float,
        action: str,
        outcome: Outcome | None = None,
        cooldown_until: float | None = None,
        headers: RateLimitHeaders | None = None,
        arrival_ms: int | None = None,
    ) -> bool:
        """Put the job back on the schedule after ``delay_s``; False if no longer ours.
        ``outcome``: the answer that led here (none for a wait). A ``reschedule`` uses no
        attempt; a ``replicas_wait`` (begun, not called) gives its attempt and slot back. The
        history says ``attempt`` after an answer, ``ambiguous`` when the answer was lost after
        the request went out (the Gateway may have sent it), else ``wait``."""
        code = outcome.code if outcome else None
        name = "ambiguous" if outcome and outcome.ambiguous else "attempt" if outcome else "wait"
        event = history_event(now, name, code=code, action=action, delay_s=round(delay_s, 3))
        names, values = self._settlement(execution, now, event, headers, arrival_ms)
        values.update(
            delay_s=delay_s,
            code=code or "",
            count={"reschedule": "reschedule", "replicas_wait": "uncalled"}.get(action, "other"),
            cooldown_until="" if cooldown_until is None else cooldown_until,
            channel=self._keys.switched,
        )
        reply = self._retry(keys=RETRY.keys_of(names), args=RETRY.arguments(values))
        return RETRY.fields(reply)["recorded"] == "1"

    def park(
        self,
        execution: Execution,
        *,
        now: float,
        code: str,
        reason: str,
        record: dict[str, Any],
        open_breaker: bool = False,
        headers: RateLimitHeaders | None = None,
        arrival_ms: int | None = None,
    ) -> tuple[bool, bool]:
        """Move the job to the dead-letter queue; returns (applied, breaker newly opened)."""
        event = history_event(now, "parked", code=code, action=f"park:{reason}")
        names, values = self._settlement(execution, now, event, headers, arrival_ms)
        values.update(
            code=code,
            reason=reason,
            record=json.dumps(record, separators=(",", ":")),
            open_breaker="1" if open_breaker else "0",
            channel=self._keys.switched,
        )
        reply = PARK.fields(self._park(keys=PARK.keys_of(names), args=PARK.arguments(values)))
        return reply["recorded"] == "1", reply["breaker_opened"] == "1"

    def hold(
        self,
        execution: Execution,
        *,
        now: float,
        code: str,
        reason: str,
        headers: RateLimitHeaders | None = None,
        arrival_ms: int | None = None,
    ) -> tuple[bool, bool]:
        """Halt the account and hold the job; returns (applied, halt newly set)."""
        event = history_event(now, "held", code=code, action="halt")
        names, values = self._settlement(execution, now, event, headers, arrival_ms)
        values.update(
            code=code,
            halt=json.dumps({"code": code, "reason": reason, "since": now}),
            channel=self._keys.switched,
        )
        reply = HOLD.fields(self._hold(keys=HOLD.keys_of(names), args=HOLD.arguments(values)))
        return reply["recorded"] == "1", reply["halt_set"] == "1"


def _claim(reply: list[Any], opening: Opening, begun_at: float) -> Claim:
    """begin.lua's reply (run at ``begun_at``): verdict, detail, wait_ms and the job's fields."""
    head = BEGIN.fields(reply)
    job = None
    if len(reply) > len(BEGIN.reply):
        values = [text(part) for part in reply[len(BEGIN.reply) :]]
        raw = dict(zip(CLAIMED_FIELDS, values, strict=True))
        raw.update(id=opening.execution.job_id, gen=str(opening.execution.gen))
        job = Job.from_hash(raw, [])
    wait_s = int(head["wait_ms"]) / 1000
    return Claim(Verdict(head["verdict"]), head["detail"], wait_s, job, begun_at)
