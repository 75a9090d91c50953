"""Meta's template reviews (``message_template_status_update``), read from the Gateway's webhooks
and applied: PAUSED and DISABLED hold the template for its account, APPROVED and REINSTATED
release it (each job held behind it is sent once); any other review is acknowledged.

An event sits in ``entry[].changes[]`` with ``field`` = ``message_template_status_update``;
its ``value`` carries ``event``, ``message_template_name``, ``message_template_language``,
``message_template_id`` and ``reason``. Its account is the one whose ``waba_id`` is the
entry's ``id`` (with one account, that one): an event for no account of ours is counted and
ignored. An event acted on whose template is malformed refuses the whole request
(``BadWebhook``), as a malformed status does.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from worker.http.webhook_payload import BadWebhook, items
from worker.logs import get_logger
from worker.models import LANGUAGE_CODE, TEMPLATE_NAME
from worker.store.history import history_event
from worker.store.templates import AsyncTemplateHolds, HeldBy, HoldReason, hold_record

log = get_logger(__name__)

FIELD = "message_template_status_update"
EVENTS_MAX = 100
NAME, LANGUAGE = re.compile(TEMPLATE_NAME), re.compile(LANGUAGE_CODE)
HOLDS = {"PAUSED": HoldReason.PAUSED, "DISABLED": HoldReason.DISABLED}
RELEASES = frozenset({"APPROVED", "REINSTATED"})


class EventResult(StrEnum):
    """What became of one template review that holds or releases (``msgworker_template_events_total
    {result}``; other reviews are not counted)."""

    HELD = "held"
    RELEASED = "released"
    UNKNOWN_ACCOUNT = "unknown_account"  # its entry names no account of ours


@dataclass(frozen=True)
class TemplateReview:
    """One review of a template, for the business account ``waba_id``."""

    waba_id: str
    event: str
    name: str
    language: str


def read_template_events(body: Any) -> list[TemplateReview]:
    """The template reviews of a webhook body that hold or release a template, in order (the
    body was checked to be an object by ``read_statuses``)."""
    found: list[TemplateReview] = []
    for e, entry in enumerate(items(body, "entry", "")):
        for c, change in enumerate(items(entry, "changes", f"entry[{e}].")):
            value = change.get("value")
            if change.get("field") != FIELD or not isinstance(value, dict):
                continue
            event = value.get("event")
            if event not in HOLDS and event not in RELEASES:
                continue  # FLAGGED, REJECTED, ...: acknowledged, nothing held or released
            where = f"entry[{e}].changes[{c}].value"
            found.append(_event(entry, value, str(event), where, f"entry[{e}].id"))
            if len(found) > EVENTS_MAX:
                raise BadWebhook(
                    "changes", f"more than {EVENTS_MAX} template events in one request"
                )
    return found


def _event(
    entry: dict[str, Any], value: dict[str, Any], event: str, where: str, at: str
) -> TemplateReview:
    waba_id = entry.get("id")
    if not isinstance(waba_id, str) or not waba_id or len(waba_id) > 64:
        raise BadWebhook(at, "must be the business account id")
    name, language = value.get("message_template_name"), value.get("message_template_language")
    if not isinstance(name, str) or not NAME.match(name):
        raise BadWebhook(f"{where}.message_template_name", "must be a template name")
    if not isinstance(language, str) or not LANGUAGE.match(language):
        raise BadWebhook(f"{where}.message_template_language", "must be a language code")
    return TemplateReview(waba_id, event, name, language)


class TemplateEvents:
    """Applies template reviews to the holds of the account each names."""

    def __init__(self, holds: AsyncTemplateHolds, account_of: Callable[[str], str | None]) -> None:
        self._holds = holds
        self._account_of = account_of

    async def apply(self, event: TemplateReview) -> EventResult:
        account = self._account_of(event.waba_id)
        if account is None:
            log.warning("template.event_unknown_account", review=event.event)
            return EventResult.UNKNOWN_ACCOUNT
        now = time.time()
        reason = HOLDS.get(event.event)
        if reason is not None:
            record = hold_record(reason, code=event.event, by=HeldBy.WHATSAPP, now=now)
            await self._holds.hold(account, event.name, event.language, record)
            log.warning(
                "template.held",
                account=account,
                template=event.name,
                language=event.language,
                reason=reason.value,
            )
            return EventResult.HELD
        line = history_event(now, "released", code=event.event, action="template_release")
        released = await self._holds.release(
            account, event.name, event.language, now=now, event=line
        )
        log.info(
            "template.released",
            account=account,
            template=event.name,
            language=event.language,
            jobs=released.jobs,
        )
        return EventResult.RELEASED
