"""Restoring dead letters from a ``msgworker dlq export``: checked whole first, then put back once.

An export is JSON lines, one dead letter each, times as ISO 8601 or Unix seconds. Every line is
checked before anything is written, so a file with a bad line changes nothing; records are then
written a chunk at a time, each skipped when the DLQ already holds it (importing twice adds
nothing) or when its job is pending again. Importing never schedules or sends anything.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from worker.errors import InvalidMessage
from worker.models import parse_message
from worker.store.deadletters import DeadLetter
from worker.store.keys import Keys, own_keys
from worker.store.protocol import IMPORT
from worker.store.scripts import load_script

# Job ids are 32 lower-case hex digits (uuid4().hex).
JOB_ID = re.compile(r"[0-9a-f]{32}")
CHUNK = 200
TEXT = ("idempotency_key", "account", "code", "reason")
TIMES = ("enqueued_at", "parked_at", "expires_at")


def is_job_id(text: str) -> bool:
    """Whether ``text`` has the form of a job id (anything else names no job)."""
    return JOB_ID.fullmatch(text) is not None


@dataclass(frozen=True)
class RestoreReport:
    imported: int = 0
    already_there: int = 0
    not_parked: int = 0


class BadRecord(Exception):
    """Raised when an exported line is not a dead letter; the message names the field."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _seconds(value: Any, name: str) -> float:
    """A time from an export: ISO 8601 with a zone, or Unix seconds."""
    if _is_int(value) or isinstance(value, float):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise BadRecord(f"{name}: not an ISO 8601 time") from None
        if moment.tzinfo is None:
            raise BadRecord(f"{name}: an ISO 8601 time needs a zone")
        seconds = moment.timestamp()
    else:
        raise BadRecord(f"{name}: not a time")
    if not math.isfinite(seconds) or seconds < 0:
        raise BadRecord(f"{name}: not a time")
    return seconds


# Each field's check: (name, test the value must pass, what it must be).
CHECKS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("id", lambda v: isinstance(v, str) and is_job_id(v), "not a job id"),
    *((name, lambda v: isinstance(v, str) and bool(v), "missing or not text") for name in TEXT),
    ("message", lambda v: isinstance(v, dict), "missing or not an object"),
    ("attempts", lambda v: v is None or _is_int(v), "not a whole number"),
    ("status", lambda v: v is None or _is_int(v), "not an HTTP status"),
    ("params", lambda v: v is None or isinstance(v, dict), "not an object"),
)


def parse_record(item: Any, known_accounts: frozenset[str]) -> DeadLetter:
    """One exported line as a dead letter; BadRecord naming the field when it is not one."""
    if not isinstance(item, dict):
        raise BadRecord("not a dead-letter record (a JSON object)")
    for name, passes, problem in CHECKS:
        if not passes(item.get(name)):
            raise BadRecord(f"{name}: {problem}")
    try:
        # Replay sends this payload: it passes the checks every enqueued one passes.
        parse_message(item["message"])
    except InvalidMessage as exc:
        problems = "; ".join(f"message.{p.field}: {p.message}" for p in exc.problems)
        raise BadRecord(problems) from None
    if item["account"] not in known_accounts:
        raise BadRecord(f"account: unknown account {item['account']!r}")
    values = {name: value for name, value in item.items() if value is not None}
    for name in TIMES:
        if name in values:
            values[name] = _seconds(values[name], name)
        elif name != "expires_at":
            raise BadRecord(f"{name}: missing")
    return DeadLetter.from_json(json.dumps(values))


def parse_export(
    lines: Iterable[tuple[int, Any]], known_accounts: frozenset[str]
) -> tuple[list[DeadLetter], list[str]]:
    """Every record of an export, or the problems, one per bad line (``line N: ...``)."""
    records: dict[str, DeadLetter] = {}
    problems: list[str] = []
    for number, item in lines:
        try:
            record = parse_record(item, known_accounts)
        except BadRecord as exc:
            problems.append(f"line {number}: {exc}")
            continue
        records.setdefault(record.id, record)  # a record repeated in the file counts once
    return list(records.values()), problems


class Restore:
    """Writes checked records back into the DLQ (record, index by time, count by code)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._keys = keys
        self._script = load_script(client, IMPORT)

    def put_back(self, records: Sequence[DeadLetter]) -> RestoreReport:
        imported = already = not_parked = 0
        keys = {
            "dead_letter_index": self._keys.dead_letter_index,
            "dead_letter_counts": self._keys.dead_letter_counts,
        }
        for start in range(0, len(records), CHUNK):
            chunk = records[start : start + CHUNK]
            each_key = [
                {
                    "dead_letter": self._keys.dead_letter(record.id),
                    **own_keys(self._keys, record.id, record.account, record.idempotency_key),
                }
                for record in chunk
            ]
            each = [
                {
                    "id": record.id,
                    "account": record.account,
                    "key": record.idempotency_key,
                    "parked_at": repr(record.parked_at),
                    "code": record.code,
                    "record": json.dumps(record.to_dict(), ensure_ascii=False),
                }
                for record in chunk
            ]
            reply = self._script(
                keys=IMPORT.key_list(keys, each=each_key), args=IMPORT.arguments({}, each=each)
            )
            done = IMPORT.fields(reply)
            imported, already, not_parked = (
                imported + int(done["imported"]),
                already + int(done["already_there"]),
                not_parked + int(done["job_not_parked"]),
            )
        return RestoreReport(imported, already, not_parked)
