"""The invariants every chaos scenario ends on: each job sent once, parked with a reason, or held.

``check(ids, runtime, messages)`` reads each job's record, its DLQ record, the schedule, the
leases and the hold lists from Redis, and the sandbox's log of accepted messages (each job is
recognised by its text body, unique per job, or by its wamid), and places every job:

    sent        its record says sent and the Gateway accepted its wamid
    parked      its record says parked, a DLQ record gives a known park reason
    pending     held or queued while its account is halted (the halt flag is set)
    lost        none of these: no record, sent without an accepted message, parked without a
                DLQ record, pending with no halt or in no place (not scheduled, leased or held)

and counts how many times the Gateway accepted it. A job accepted more than once is a
duplicate: *ambiguous* when its history shows a call whose answer was lost (an ``ambiguous``
event or code ``WORKER_LOST``; the default table retries those, at-least-once), else
*real*, which is a bug. ``Report.assert_holds()`` asserts lost == 0 and real duplicates == 0;
scenarios decide about ambiguous duplicates. Given the workers' /metrics expositions, the sum of
``msgworker_api_responses_total{code="OK"}`` must equal the sandbox's accepted count, less the
accepted messages whose answer never reached a worker (the sandbox's ``slow`` faults).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from worker.outcome import WORKER_LOST
from worker.send.routing import ParkReason
from worker.service.runtime import Runtime
from worker.store.keys import lane_of
from worker.store.records import Job
from worker.store.schedule import lane_keys
from worker.store.states import JobState

PARK_REASONS = frozenset(reason.value for reason in ParkReason)
PENDING_STATES = frozenset({JobState.HELD, JobState.QUEUED, JobState.SCHEDULED})
_OK_SAMPLE = re.compile(r"^msgworker_api_responses_total\{([^}]*)\} (\S+)$", re.MULTILINE)


@dataclass
class Report:
    """Where every job ended up; ids per place so a failure names them."""

    jobs: int = 0
    accepted: int = 0
    sent: list[str] = field(default_factory=list)
    parked: dict[str, list[str]] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    lost: dict[str, str] = field(default_factory=dict)  # id -> why
    ambiguous_duplicates: dict[str, int] = field(default_factory=dict)  # id -> times accepted
    real_duplicates: dict[str, int] = field(default_factory=dict)
    # Parked after the Gateway had in fact accepted it (a lost answer, then a park): one send.
    parked_but_accepted: list[str] = field(default_factory=list)
    strays: int = 0  # accepted messages that belong to no job checked
    ok_metric: float | None = None
    ok_expected: int | None = None

    # Jobs whose history shows a call cut off before its answer (a worker killed mid-call).
    answer_lost: list[str] = field(default_factory=list)

    @property
    def duplicated(self) -> int:
        return len(self.ambiguous_duplicates) + len(self.real_duplicates)

    @property
    def extra_sends(self) -> int:
        """Acceptances beyond the first of the jobs sent more than once after a lost answer."""
        return sum(times - 1 for times in self.ambiguous_duplicates.values())

    def counts(self) -> dict[str, Any]:
        """The figures, for logs and the soak's printout."""
        return {
            "jobs": self.jobs,
            "accepted": self.accepted,
            "sent": len(self.sent),
            "parked": {reason: len(ids) for reason, ids in sorted(self.parked.items())},
            "pending": len(self.pending),
            "lost": len(self.lost),
            "duplicated": self.duplicated,
            "ambiguous_duplicates": len(self.ambiguous_duplicates),
            "real_duplicates": len(self.real_duplicates),
            "extra_sends": self.extra_sends,
            "answer_lost": len(self.answer_lost),
            "parked_but_accepted": len(self.parked_but_accepted),
            "ok_metric": self.ok_metric,
        }

    def assert_holds(self) -> Report:
        """Nothing lost, nothing sent twice without cause, metrics agree with the Gateway."""
        assert not self.lost, f"lost jobs: {dict(list(self.lost.items())[:10])} {self.counts()}"
        assert not self.real_duplicates, (
            f"sent twice with no lost answer: {self.real_duplicates} {self.counts()}"
        )
        assert self.strays == 0, f"{self.strays} accepted messages belong to no job"
        if self.ok_metric is not None:
            assert self.ok_metric == self.ok_expected, (
                f'msgworker_api_responses_total{{code="OK"}} {self.ok_metric} != '
                f"{self.ok_expected} accepted with an answer"
            )
        return self


def answer_was_lost(job: Job) -> bool:
    """True when a call of this job went out and its answer never came back."""
    return any(
        event.get("event") == "ambiguous" or event.get("code") == WORKER_LOST
        for event in job.history
    )


def text_body(message: Mapping[str, Any]) -> str | None:
    text = message.get("text")
    return text.get("body") if isinstance(text, Mapping) else None


def ok_responses(expositions: Iterable[str]) -> float:
    """``msgworker_api_responses_total{code="OK",...}`` summed over workers and label sets."""
    total = 0.0
    for exposition in expositions:
        for match in _OK_SAMPLE.finditer(exposition):
            if 'code="OK"' in match.group(1):
                total += float(match.group(2))
    return total


def _places(runtime: Runtime) -> tuple[dict[str, str], set[str], dict[str, set[str]]]:
    """The lane of each member of the schedule (``id|gen``), the leases' members, and job ids
    by hold list."""
    client, keys = runtime.redis, runtime.keys
    due = {str(m): key for key in lane_keys(client, keys) for m in client.zrange(key, 0, -1)}
    leases = {str(m) for m in client.zrange(keys.leases, 0, -1)}
    held: dict[str, set[str]] = {}
    for key in client.scan_iter(match=f"{keys.prefix}held:*", count=1000):
        account = keys.account_of("held", str(key)) or ""
        held[account] = {str(i) for i in client.lrange(key, 0, -1)}
    return due, leases, held


def check(  # noqa: C901, PLR0912, PLR0915 - one pass that places every job
    ids: Sequence[str],
    runtime: Runtime,
    messages: Sequence[Mapping[str, Any]],
    *,
    expositions: Sequence[str] | None = None,
    unanswered_accepts: int = 0,
) -> Report:
    """Place every job and count its sends; see the module docstring. Does not assert."""
    report = Report(jobs=len(ids), accepted=len(messages))
    jobs: dict[str, Job | None] = {job_id: runtime.jobs.get(job_id) for job_id in ids}
    by_body = {text_body(job.message): job_id for job_id, job in jobs.items() if job}
    assert None not in by_body, "every job checked needs a text body"
    assert len(by_body) == sum(1 for job in jobs.values() if job), "text bodies must be unique"
    by_wamid = {job.wamid: job_id for job_id, job in jobs.items() if job and job.wamid}
    accepted: Counter[str] = Counter()
    accepted_wamids: dict[str, set[str]] = {}
    for message in messages:
        body = message.get("body")
        job_id = by_body.get(text_body(body) if isinstance(body, Mapping) else None)
        job_id = job_id or by_wamid.get(message.get("wamid"))
        if job_id is None:
            report.strays += 1
            continue
        accepted[job_id] += 1
        accepted_wamids.setdefault(job_id, set()).add(str(message.get("wamid")))

    due, leases, held = _places(runtime)
    scheduled_ids = {member.rpartition("|")[0] for member in due.keys() | leases}
    lanes = {member.rpartition("|")[0]: lane for member, lane in due.items()}
    keys = runtime.keys
    for job_id, job in jobs.items():
        times = accepted[job_id]
        if job is None:
            report.lost[job_id] = "no job record"
            continue
        dead_letter = runtime.dead_letters.get(job_id)
        halted = runtime.switches.halted(job.account) is not None
        if job.state is JobState.SENT:
            if job.wamid not in accepted_wamids.get(job_id, set()):
                report.lost[job_id] = f"sent as {job.wamid} but the Gateway never accepted that"
            elif dead_letter is not None:
                report.lost[job_id] = "sent and also in the DLQ (two places)"
            elif job_id in scheduled_ids:
                report.lost[job_id] = "sent and also scheduled (two places)"
            else:
                report.sent.append(job_id)
        elif job.state is JobState.PARKED:
            if dead_letter is None:
                report.lost[job_id] = "parked without a DLQ record"
            elif dead_letter.reason not in PARK_REASONS:
                report.lost[job_id] = f"parked with an unknown reason {dead_letter.reason!r}"
            elif job_id in scheduled_ids:
                report.lost[job_id] = "parked and also scheduled (two places)"
            else:
                report.parked.setdefault(dead_letter.reason, []).append(job_id)
                if times and answer_was_lost(job):
                    report.parked_but_accepted.append(job_id)
                elif times:
                    report.real_duplicates[job_id] = times  # accepted, yet parked: two places
        elif job.state in PENDING_STATES and halted:
            in_hold = job_id in held.get(job.account, set())
            if job.state is JobState.HELD and not in_hold:
                report.lost[job_id] = "held but in no hold list"
            elif job.state is not JobState.HELD and job_id not in scheduled_ids:
                report.lost[job_id] = f"{job.state} but neither scheduled nor leased"
            elif lanes.get(job_id) not in {None, keys.due(job.account, lane_of(job.priority))}:
                report.lost[job_id] = f"scheduled in {lanes[job_id]}, not its {job.priority} lane"
            else:
                report.pending.append(job_id)
        else:
            report.lost[job_id] = f"left {job.state} with no halt (nothing will send it)"
        if answer_was_lost(job):
            report.answer_lost.append(job_id)
        if times > 1:
            duplicates = report.ambiguous_duplicates if answer_was_lost(job) else None
            (duplicates if duplicates is not None else report.real_duplicates)[job_id] = times

    if expositions is not None:
        report.ok_metric = ok_responses(expositions)
        report.ok_expected = report.accepted - unanswered_accepts
    return report
