"""The Gateway's status webhooks (Meta's WhatsApp Cloud API shape), read strictly and boundedly.

Statuses sit in ``entry[].changes[].value.statuses[]`` (template reviews are read by
``worker.http.template_events``). Everything else (inbound messages, account updates, fields we
do not use) is acknowledged and ignored, and so is a status kind we do not know. A status we do
know with a malformed field refuses the whole request (``BadWebhook``): nothing of it is applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from worker.send.receipt_rules import ReceiptRules
from worker.send.routing import undelivered_code
from worker.store.receipts import ReceiptAction, ReceiptStatus, StatusUpdate
from worker.store.templates import hold_reason_for

STATUSES_MAX = 1000
TEXT_MAX = 512
# Unix seconds as a string; after 2001 and before 2286.
TIMESTAMP = re.compile(r"^[0-9]{10}$")
WAMID = re.compile(r"^[\x21-\x7e]{1,256}$")
RECIPIENT = re.compile(r"^\+?[0-9]{1,20}$")
CODE_MAX = 10**9


class BadWebhook(ValueError):
    """Raised when a status the service reads is malformed; ``field`` says where."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class ReadStatus:
    """One status as read: the update to apply and the recipient (for masked logs)."""

    update: StatusUpdate
    recipient: str | None


def items(parent: dict[str, Any], name: str, where: str) -> list[dict[str, Any]]:
    """``parent[name]`` as a list of objects (absent: none); anything else is malformed."""
    value = parent.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise BadWebhook(f"{where}{name}", "must be a list of objects")
    return value


def read_statuses(body: Any, rules: ReceiptRules) -> list[ReadStatus]:
    """Every delivery status of a webhook body, in order."""
    if not isinstance(body, dict):
        raise BadWebhook("body", "must be a JSON object")
    found: list[ReadStatus] = []
    for e, entry in enumerate(items(body, "entry", "")):
        for c, change in enumerate(items(entry, "changes", f"entry[{e}].")):
            value = change.get("value")
            if value is None:
                continue
            where = f"entry[{e}].changes[{c}].value"
            if not isinstance(value, dict):
                raise BadWebhook(where, "must be an object")
            for s, raw in enumerate(items(value, "statuses", f"{where}.")):
                if raw.get("status") not in ReceiptStatus.__members__.values():
                    continue  # a kind of status we do not know: acknowledged, ignored
                found.append(_status(raw, rules, f"{where}.statuses[{s}]"))
                if len(found) > STATUSES_MAX:
                    raise BadWebhook("statuses", f"more than {STATUSES_MAX} in one request")
    return found


def _status(raw: dict[str, Any], rules: ReceiptRules, where: str) -> ReadStatus:
    wamid, timestamp, recipient = raw.get("id"), raw.get("timestamp"), raw.get("recipient_id")
    if not isinstance(wamid, str) or not WAMID.match(wamid):
        raise BadWebhook(f"{where}.id", "must be a wamid (1 to 256 printable characters)")
    if not isinstance(timestamp, str) or not TIMESTAMP.match(timestamp):
        raise BadWebhook(f"{where}.timestamp", "must be Unix seconds, as a string")
    if recipient is not None and (not isinstance(recipient, str) or not RECIPIENT.match(recipient)):
        raise BadWebhook(f"{where}.recipient_id", "must be a phone number")
    status = ReceiptStatus(raw["status"])
    if status is not ReceiptStatus.FAILED:
        return ReadStatus(StatusUpdate(wamid, status, float(timestamp)), recipient)
    error = _first_error(raw, where)
    code = error.get("code") if error else None
    action, terms = rules.for_code(code)
    description = " ".join(str(error[k]) for k in ("title", "message") if error and error.get(k))
    update = StatusUpdate(
        wamid,
        status,
        float(timestamp),
        error=error,
        code=undelivered_code(code),
        action=action,
        description=description[:TEXT_MAX],
        hold_reason=hold_reason_for(code) if action is ReceiptAction.HOLD_TEMPLATE else "",
        terms=terms,
    )
    return ReadStatus(update, recipient)


def _first_error(raw: dict[str, Any], where: str) -> dict[str, Any] | None:
    """The first of ``errors[]``, bounded: ``{"code", "title", "message", "details"}``."""
    errors = items(raw, "errors", f"{where}.")
    if not errors:
        return None
    first, field = errors[0], f"{where}.errors[0]"
    code = first.get("code")
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code < CODE_MAX:
        raise BadWebhook(f"{field}.code", "must be a whole number")
    data = first.get("error_data")
    if data is not None and not isinstance(data, dict):
        raise BadWebhook(f"{field}.error_data", "must be an object")
    texts = {"title": first.get("title"), "message": first.get("message")}
    texts["details"] = (data or {}).get("details")
    for name, text in texts.items():
        if text is not None and not isinstance(text, str):
            raise BadWebhook(f"{field}.{name}", "must be a string")
    bounded = {name: text[:TEXT_MAX] for name, text in texts.items() if text}
    return {"code": code, **bounded}
