"""Replays started from the console: paced in a thread of the serve process, progress in Redis.

The replay is the CLI's (``worker.store.drain``): a slice at a time at the chosen rate, each
record scheduled and out of the DLQ in one step, jobs already sent skipped. A replay cut short
(the process stopped) leaves the rest in the DLQ, so starting it again goes on where it was.
Progress is kept a day under its own key, so any serve process can show it, with the ids the
replay covers: a replayed job is not sent yet, it may wait behind the billing breaker, so the
page tells from the jobs themselves how many were sent, wait, or were parked again.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from worker.http.console.jobtext import WAIT_EVENT
from worker.logs import get_logger
from worker.store.deadletters import DeadLetters, ReplayReport
from worker.store.drain import drain
from worker.store.keys import Keys
from worker.store.states import JobState

log = get_logger(__name__)
PROGRESS_TTL_S = 24 * 3600
# Job states are read this many a round trip when a replay's jobs are tallied.
TALLY_CHUNK = 500
# A page tallies at most this many of a replay's jobs (the page refreshes every few seconds: all
# 288,000 of a large replay took 15 s a load). A larger replay is tallied a window of chunks a
# load, in turn; each chunk's counts are kept in the progress hash, so the figures shown are at
# most one turn old, and a chunk not tallied yet counts as on the way (never finished early).
TALLY_PER_VIEW = 10_000
TALLY_CURSOR = "tally_cursor"  # progress field: how many chunks the pages have tallied in all
TALLY_FIELD = "tally:"  # progress field prefix: one chunk's counts, as JSON
BREAKER_WAIT = "breaker_wait"


@dataclass(frozen=True)
class Tally:
    """Where a replay's jobs stand now, from their own records."""

    sent: int = 0  # sent, the ones the replay skipped as already sent or delivered included
    waiting: int = 0  # behind the billing breaker: its last event a breaker wait
    on_the_way: int = 0  # scheduled, in the broker or being sent
    parked: int = 0  # in the DLQ: not replayed yet, expired, or parked again
    gone: int = 0  # no record: forgotten since

    @property
    def pending(self) -> int:
        return self.waiting + self.on_the_way


@dataclass(frozen=True)
class Progress:
    """Where one replay stands; ``state`` is running, done or failed."""

    run_id: str
    what: str
    total: int
    rate: float
    state: str
    replayed: int
    already_sent: int
    expired: int
    missing: int
    delivered: int
    started: float
    updated: float
    tally: Tally = Tally()

    @property
    def done(self) -> int:
        return ReplayReport(
            self.replayed, self.already_sent, self.expired, self.missing, self.delivered
        ).done

    @property
    def percent(self) -> int:
        return 100 if self.total == 0 else round(100 * self.done / self.total)

    @property
    def skipped(self) -> int:
        return self.already_sent + self.delivered + self.expired + self.missing

    @property
    def sent_by_replay(self) -> int:
        """Jobs this replay sent again (the sent ones less those it skipped as already sent)."""
        return max(0, self.tally.sent - self.already_sent - self.delivered)

    @property
    def finished(self) -> bool:
        """Done only when the replay went through its records and none it replayed waits."""
        return self.state == "done" and self.tally.pending == 0

    @property
    def words(self) -> str:
        """The replay's state as the page says it."""
        if self.state == "done" and self.tally.waiting:
            return f"replayed, {self.tally.waiting} waiting behind the billing breaker"
        if self.state == "done" and self.tally.pending:
            return f"replayed, {self.tally.pending} on the way"
        return self.state


class Replays:
    """Starts replays in background threads and reads their progress."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        dead_letters: DeadLetters,
        *,
        tally_per_view: int = TALLY_PER_VIEW,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._dead_letters = dead_letters
        self._chunks_per_view = max(1, tally_per_view // TALLY_CHUNK)

    def start(self, ids: Sequence[str], *, rate_per_s: float, what: str) -> str:
        run_id = secrets.token_hex(8)
        now = time.time()
        fields: dict[str, str | int | float] = {
            "what": what,
            "total": len(ids),
            "rate": rate_per_s,
            "started": now,
        }
        self._write(run_id, ReplayReport(), "running", extra=fields, ids=ids)
        thread = threading.Thread(
            target=self._run,
            args=(run_id, list(ids), rate_per_s),
            name=f"console-replay-{run_id}",
            daemon=True,
        )
        thread.start()
        log.info("console.replay_started", run=run_id, what=what, total=len(ids), rate=rate_per_s)
        return run_id

    def _run(self, run_id: str, ids: list[str], rate_per_s: float) -> None:
        try:
            report = drain(
                self._dead_letters,
                ids,
                rate_per_s=rate_per_s,
                on_progress=lambda r: self._write(run_id, r, "running"),
            )
        except redis.RedisError as exc:
            log.exception("console.replay_failed", run=run_id, error=type(exc).__name__)
            self._mark_failed(run_id)
            return
        self._write(run_id, report, "done")
        log.info("console.replay_done", run=run_id, replayed=report.replayed)

    def _mark_failed(self, run_id: str) -> None:
        try:
            self._redis.hset(self._keys.console_replay(run_id), "state", "failed")
        except redis.RedisError:
            log.warning("console.replay_progress_lost", run=run_id)

    def _write(
        self,
        run_id: str,
        report: ReplayReport,
        state: str,
        extra: dict[str, str | int | float] | None = None,
        ids: Sequence[str] = (),
    ) -> None:
        key = self._keys.console_replay(run_id)
        mapping: dict[str, str | int | float] = {
            **(extra or {}),
            "state": state,
            "replayed": report.replayed,
            "already_sent": report.already_sent,
            "expired": report.expired,
            "missing": report.missing,
            "delivered": report.delivered,
            "updated": time.time(),
        }
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]  # str keys are valid keys
        pipe.expire(key, PROGRESS_TTL_S)
        if ids:
            jobs = self._keys.console_replay_jobs(run_id)
            for start in range(0, len(ids), TALLY_CHUNK):
                pipe.rpush(jobs, *ids[start : start + TALLY_CHUNK])
            pipe.expire(jobs, PROGRESS_TTL_S)
        pipe.execute()

    def get(self, run_id: str) -> Progress | None:
        if not (len(run_id) == 16 and all(c in "0123456789abcdef" for c in run_id)):
            return None
        raw: dict[str, str] = self._redis.hgetall(self._keys.console_replay(run_id))  # type: ignore[assignment]
        if not raw:
            return None
        try:
            return Progress(
                run_id=run_id,
                what=raw.get("what", ""),
                total=int(raw["total"]),
                rate=float(raw["rate"]),
                state=raw.get("state", "running"),
                replayed=int(raw.get("replayed", 0)),
                already_sent=int(raw.get("already_sent", 0)),
                expired=int(raw.get("expired", 0)),
                missing=int(raw.get("missing", 0)),
                delivered=int(raw.get("delivered", 0)),
                started=float(raw["started"]),
                updated=float(raw.get("updated", raw["started"])),
                tally=self._tally(run_id, raw),
            )
        except (KeyError, ValueError):
            return None

    def _tally(self, run_id: str, progress: dict[str, str]) -> Tally:
        """Each of the replay's jobs by its state now and, unsettled, by its last event: this
        load's window of chunks read now, the others as an earlier load found them."""
        jobs = self._keys.console_replay_jobs(run_id)
        size = int(self._redis.llen(jobs))
        chunks = -(-size // TALLY_CHUNK)
        if chunks == 0:
            return Tally()
        turn = min(chunks, self._chunks_per_view)
        key = self._keys.console_replay(run_id)
        first = int(self._redis.hincrby(key, TALLY_CURSOR, turn)) - turn
        fresh = {
            f"{TALLY_FIELD}{chunk}": json.dumps(self._tally_chunk(jobs, chunk))
            for chunk in sorted({(first + n) % chunks for n in range(turn)})
        }
        self._redis.hset(key, mapping=fresh)  # type: ignore[arg-type]  # str keys are valid keys
        counts: Counter[str] = Counter()
        for chunk in range(chunks):
            found = fresh.get(f"{TALLY_FIELD}{chunk}") or progress.get(f"{TALLY_FIELD}{chunk}")
            if found is None:
                counts["on_the_way"] += min(TALLY_CHUNK, size - chunk * TALLY_CHUNK)
            else:
                counts.update(json.loads(found))
        return Tally(**counts)

    def _tally_chunk(self, jobs: str, chunk: int) -> dict[str, int]:
        """The ``Tally`` counts of one chunk of the replay's jobs, read in one round trip."""
        start = chunk * TALLY_CHUNK
        ids = [str(i) for i in self._redis.lrange(jobs, start, start + TALLY_CHUNK - 1)]
        pipe = self._redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(self._keys.job(job_id), "state")
            pipe.lindex(self._keys.history(job_id), -1)
        replies = pipe.execute()
        return dict(
            Counter(_standing(s, last) for s, last in zip(replies[::2], replies[1::2], strict=True))
        )


def _standing(state: str | None, last_event: str | None) -> str:
    """Which ``Tally`` count a job falls in, by its state and its history's last line."""
    if state is None:
        return "gone"
    if state == JobState.SENT:
        return "sent"
    if state == JobState.PARKED:
        return "parked"
    try:
        last = json.loads(last_event or "{}")
    except ValueError:
        last = {}
    waiting = last.get("event") == WAIT_EVENT and last.get("action") == BREAKER_WAIT
    return "waiting" if waiting else "on_the_way"
