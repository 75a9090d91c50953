"""Template holds: WhatsApp paused or disabled a template, so an account's jobs using it wait.

A hold is per account and template (name and language). It comes from a ``failed`` delivery
with 132015 or 132016 (``delivery.lua``: that job is reopened and held), from Meta's
``message_template_status_update`` webhook (PAUSED, DISABLED) or from an operator. While it
lasts, each of the account's jobs using the template is held at its begin (``begin.lua``), with
no Gateway call; a release (APPROVED or REINSTATED, or an operator) puts them all back on the
schedule, due now, each sent once.

State, per account: one hash of held templates (field ``<name>|<language>`` -> JSON
``{since, reason, code, by}``) and one sorted set of the jobs held behind them
(``<name>|<language>:<job id>``, score 0), so a template's jobs are one lexical range: counted
with ZLEXCOUNT, released in batches by one script.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis
import redis.asyncio

from worker.store.declaration import text
from worker.store.keys import LANES, Keys, decode_part, template_field
from worker.store.protocol import HOLD_TEMPLATE, RELEASE_TEMPLATE
from worker.store.scripts import load_script, script_source

# A held job's ``held_reason`` (and begin's detail) when its template is held.
TEMPLATE_PAUSED = "template_paused"
# Held jobs released per script call.
RELEASE_BATCH = 500


class HoldReason(StrEnum):
    """Why a template is held."""

    PAUSED = "paused"  # 132015, or Meta's PAUSED review
    DISABLED = "disabled"  # 132016, or Meta's DISABLED review
    OPERATOR = "operator"  # ``msgworker template hold``
    # Not a hold: a release lifted it and stopped before its last batch (serve restarted, Redis
    # was lost a moment); its jobs are still held. Another release of the template finishes it.
    RELEASING = "releasing"


# The failed delivery's code that says the template is disabled (132015: paused).
TEMPLATE_DISABLED_CODE = 132016


def hold_reason_for(code: int | None) -> HoldReason:
    """Why a failed delivery's code holds its template: disabled for 132016, else paused."""
    return HoldReason.DISABLED if code == TEMPLATE_DISABLED_CODE else HoldReason.PAUSED


class HeldBy(StrEnum):
    WHATSAPP = "whatsapp"  # a failed delivery's code or Meta's review event
    OPERATOR = "operator"


@dataclass(frozen=True)
class TemplateHold:
    """One held template of an account, and how many jobs wait behind it."""

    name: str
    language: str
    since: float | None
    reason: str
    code: str
    by: str
    jobs: int


@dataclass(frozen=True)
class Released:
    """What a release did: whether the template was held, and the jobs put back."""

    was_held: bool
    jobs: int


def held_range(template: str) -> tuple[str, str]:
    """The lexical range of one template's members in the held jobs' set."""
    return f"[{template}:", f"({template};"


def _hold_call(keys: Keys, account: str, template: str, hold: dict[str, Any]) -> dict[str, Any]:
    return {
        "keys": HOLD_TEMPLATE.key_list({"holds": keys.template_holds(account)}),
        "args": HOLD_TEMPLATE.arguments(
            {"template": template, "hold": json.dumps(hold, separators=(",", ":"))}
        ),
    }


class _Releasing:
    """One release in progress: the script call for each batch of held jobs read, and what the
    calls did (the loop is the blocking or the asyncio client's)."""

    def __init__(self, keys: Keys, account: str, template: str, *, now: float, event: str) -> None:
        self._keys, self.account, self.template = keys, account, template
        self._values = {"account": account, "template": template, "now": now, "event": event}
        self.held_jobs = keys.template_held_jobs(account)
        self.was_held, self.jobs, self.done, self._lift = False, 0, False, True

    def call(self, members: list[Any]) -> dict[str, Any]:
        """The script's KEYS and ARGV for these members of the held jobs' set."""
        ids = [text(m).partition(":")[2] for m in members]
        k = self._keys
        fixed = {
            "holds": k.template_holds(self.account),
            "held_jobs": self.held_jobs,
            "scheduled_accounts": k.scheduled_accounts,
            **{f"due_{lane}": k.due(self.account, lane) for lane in LANES},
        }
        values = {**self._values, "lift": "1" if self._lift else "0"}
        return {
            "keys": RELEASE_TEMPLATE.key_list(
                fixed, each=[{"job": k.job(i), "history": k.history(i)} for i in ids]
            ),
            "args": RELEASE_TEMPLATE.arguments(values, each=[{"id": i} for i in ids]),
        }

    def took(self, reply: list[Any]) -> None:
        lifted, released, left = (int(v) for v in reply)
        self.was_held = self.was_held or bool(lifted)
        self.jobs += released
        self._lift = False
        self.done = not left

    @property
    def result(self) -> Released:
        return Released(self.was_held, self.jobs)


def hold_record(reason: HoldReason, *, code: str, by: HeldBy, now: float) -> dict[str, Any]:
    """A hold as stored (``since`` stays the first hold's when the template is held already)."""
    return {"since": now, "reason": reason.value, "code": code, "by": by.value}


def _hold_of(field: str, raw: str, jobs: int) -> TemplateHold:
    """A stored hold as read; a record unreadable (another version, by hand) is still a hold."""
    name, _, language = field.partition("|")
    try:
        record = json.loads(raw)
    except ValueError:
        record = {}
    if not isinstance(record, dict):
        record = {}
    since = record.get("since")
    return TemplateHold(
        name=decode_part(name),
        language=decode_part(language),
        since=float(since) if isinstance(since, int | float) else None,
        reason=str(record.get("reason") or ""),
        code=str(record.get("code") or ""),
        by=str(record.get("by") or ""),
        jobs=jobs,
    )


class TemplateHolds:
    """Hold, release and list an account's held templates (blocking client: CLI, status)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys
        self._hold = load_script(client, HOLD_TEMPLATE)
        self._release = load_script(client, RELEASE_TEMPLATE)

    def hold(self, account: str, name: str, language: str, record: dict[str, Any]) -> bool:
        """Hold the template; False when it was held already."""
        template = template_field(name, language)
        return bool(self._hold(**_hold_call(self._keys, account, template, record)))

    def release(
        self, account: str, name: str, language: str, *, now: float, event: str
    ) -> Released:
        """Lift the hold and put every job held behind it back on the schedule, due now."""
        r = _Releasing(self._keys, account, template_field(name, language), now=now, event=event)
        while not r.done:
            range_ = held_range(r.template)
            members = self._redis.zrangebylex(r.held_jobs, *range_, start=0, num=RELEASE_BATCH)
            r.took(self._release(**r.call(members)))
        return r.result

    def held(self, account: str) -> list[TemplateHold]:
        """The account's held templates, by name and language, each with its jobs' count; and
        any template whose release stopped before its last batch (reason ``releasing``): its
        jobs are still held, and nothing else would show them."""
        raw: dict[Any, Any] = self._redis.hgetall(self._keys.template_holds(account))
        holds = dict(sorted((text(f), text(v)) for f, v in raw.items()))
        held_jobs = self._keys.template_held_jobs(account)
        pipe = self._redis.pipeline(transaction=False)
        for field in holds:
            pipe.zlexcount(held_jobs, *held_range(field))
        counts = pipe.execute() if holds else []
        found = [
            _hold_of(field, value, int(n))
            for (field, value), n in zip(holds.items(), counts, strict=True)
        ]
        unfinished = [
            _hold_of(field, json.dumps({"reason": HoldReason.RELEASING.value}), jobs)
            for field, jobs in self._templates_with_jobs(held_jobs)
            if field not in holds
        ]
        return sorted([*found, *unfinished], key=lambda hold: (hold.name, hold.language))

    def _templates_with_jobs(self, held_jobs: str) -> list[tuple[str, int]]:
        """Each template that has jobs in the account's set of held jobs, with their count: one
        look per template (a template's jobs are one lexical range, skipped whole)."""
        found, start = [], "-"
        while first := self._redis.zrangebylex(held_jobs, start, "+", start=0, num=1):
            template = text(first[0]).partition(":")[0]
            found.append((template, int(self._redis.zlexcount(held_jobs, *held_range(template)))))
            start = held_range(template)[1]
        return found


class AsyncTemplateHolds:
    """Hold and release templates from the webhook endpoint (redis.asyncio)."""

    def __init__(self, client: redis.asyncio.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys
        self._hold = client.register_script(script_source(HOLD_TEMPLATE))
        self._release = client.register_script(script_source(RELEASE_TEMPLATE))

    async def hold(self, account: str, name: str, language: str, record: dict[str, Any]) -> bool:
        template = template_field(name, language)
        return bool(await self._hold(**_hold_call(self._keys, account, template, record)))

    async def release(
        self, account: str, name: str, language: str, *, now: float, event: str
    ) -> Released:
        r = _Releasing(self._keys, account, template_field(name, language), now=now, event=event)
        while not r.done:
            range_ = held_range(r.template)
            members = await self._redis.zrangebylex(
                r.held_jobs, *range_, start=0, num=RELEASE_BATCH
            )
            r.took(await self._release(**r.call(members)))
        return r.result
