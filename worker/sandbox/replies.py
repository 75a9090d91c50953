"""What the sandbox gateway can answer: documented errors, faults, successes, scripted answers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from worker.errors import InvalidMessage
from worker.models import parse_message
from worker.outcome import OK, http_code
from worker.sandbox.config import SandboxInputError, check_number
from worker.sandbox.meta_errors import MetaError

DROPPED = "DROPPED"
HTML_502 = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


@dataclass(frozen=True)
class AcceptedMessage:
    """A message the Gateway accepted: its wamid, the recipient's wa_id, and Meta's error for it
    (None: it will be delivered)."""

    wamid: str
    wa_id: str
    error: MetaError | None = None


@dataclass(frozen=True)
class Reply:
    """What to answer one gateway request with; ``code`` is what the stats count it as."""

    code: str
    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drop: bool = False
    accepted: AcceptedMessage | None = None


def json_bytes(data: Any) -> bytes:
    """Compact JSON, as the Gateway sends it."""
    return json.dumps(data, separators=(",", ":")).encode()


@dataclass(frozen=True)
class GatewayErrorKind:
    """One documented Gateway error: its HTTP status, code, group and description."""

    status: int
    code: str
    group: str
    description: str

    def reply(
        self, params: dict[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> Reply:
        """This error in the Gateway's JSON shape."""
        errors: dict[str, Any] = {
            "code": self.code,
            "group": self.group,
            "description": self.description,
        }
        if params is not None:
            errors["params"] = params
        body = json_bytes({"isSuccess": False, "errors": errors})
        return Reply(code=self.code, status=self.status, body=body, headers=headers or {})


AUTH_001 = GatewayErrorKind(
    401, "AUTH_001", "UNAUTHORIZED", "API Key not found, invalid, or expired."
)
AUTH_002 = GatewayErrorKind(401, "AUTH_002", "UNAUTHORIZED", "Missing Authorization header.")
AUTH_003 = GatewayErrorKind(
    401, "AUTH_003", "UNAUTHORIZED", "Invalid token format. It must be 'Bearer <token>'."
)
AUTH_004 = GatewayErrorKind(
    500, "AUTH_004", "INTERNAL_ERROR", "An error occurred in the authentication service."
)
WABA_001 = GatewayErrorKind(
    401, "WABA_001", "UNAUTHORIZED", "WABA credentials are missing or invalid."
)
BILL_001 = GatewayErrorKind(
    402, "BILL_001", "PAYMENT_REQUIRED", "Insufficient balance. Please top up your account."
)
BILL_002 = GatewayErrorKind(
    400, "BILL_002", "BAD_REQUEST", "No billing account found associated with the API Key."
)
RATE_001 = GatewayErrorKind(
    429, "RATE_001", "TOO_MANY_REQUESTS", "Rate limit exceeded. Please try again later."
)
# The public docs list no validation codes; this one is the sandbox's own.
VAL_001 = GatewayErrorKind(400, "VAL_001", "VALIDATION", "")

DROP = Reply(code=DROPPED, status=0, drop=True)


def invalid_reply(description: str, fields: list[str], headers: Mapping[str, str]) -> Reply:
    """A refused payload: 400 VALIDATION naming the fields."""
    return replace(VAL_001, description=description).reply({"fields": fields}, headers)


def validated_payload(body: bytes, headers: Mapping[str, str]) -> dict[str, Any] | Reply:
    """The message in ``body``, or the 400 naming what is wrong with it."""
    try:
        payload = json.loads(body)
    except ValueError:
        return invalid_reply("body is not valid JSON", ["body"], headers)
    try:
        parse_message(payload)
    except InvalidMessage as exc:
        return invalid_reply(str(exc), [problem.field for problem in exc.problems], headers)
    if not isinstance(payload, dict):  # parse_message refuses these; this tells mypy
        return invalid_reply("body must be a JSON object", ["body"], headers)
    return payload


def format_retry_after(style: str, seconds: int) -> str | int:
    """RATE_001's ``retry_after`` in one of the spellings the Gateway has been seen to use."""
    match style:
        case "s":
            return f"{seconds}s"
        case "number":
            return seconds
        case "ms":
            return f"{seconds * 1000}ms"
        case _:
            return f"{seconds} seconds"


def fault_reply(kind: str, headers: Mapping[str, str]) -> Reply:
    """An injected upstream failure of ``kind`` (any but ``slow``, which is a late success)."""
    match kind:
        case "auth_004":
            return AUTH_004.reply(headers=headers)
        case "html_502":
            return Reply(http_code(502), 502, HTML_502, "text/html", headers)
        case "empty_503":
            return Reply(http_code(503), 503, b"", None, headers)
        case _:
            return DROP


def wa_id_of(to: Any) -> str:
    """The digits of ``to``, as WhatsApp names a recipient."""
    return "".join(ch for ch in str(to) if ch.isdigit()) if to is not None else ""


def success_reply(
    wamid: str,
    to: Any,
    headers: Mapping[str, str],
    delay_s: float,
    error: MetaError | None = None,
) -> Reply:
    """The Gateway's 200 for an accepted message; Meta's ``error`` for it comes later."""
    wa_id = wa_id_of(to)
    data = {
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": wa_id}],
        "messages": [{"id": wamid}],
    }
    body = json_bytes({"isSuccess": True, "data": data})
    return Reply(
        code=OK,
        status=200,
        body=body,
        headers=headers,
        delay_s=delay_s,
        accepted=AcceptedMessage(wamid, wa_id, error),
    )


@dataclass(frozen=True)
class Scripted:
    """A canned answer from ``POST /sandbox/script``; ``reply`` None means a real success."""

    reply: Reply | None
    delay_s: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)


_SCRIPT_FIELDS = frozenset(
    {"ok", "drop", "code", "status", "group", "description", "params"}
    | {"raw_body", "content_type", "headers", "delay_s"}
)


def parse_scripted(where: str, answer: Any) -> Scripted:
    """Validate one scripted answer; errors name it as ``answers[i].field``."""
    if not isinstance(answer, dict):
        raise SandboxInputError(where, "must be an object")
    unknown = sorted(set(answer) - _SCRIPT_FIELDS)
    if unknown:
        raise SandboxInputError(f"{where}.{unknown[0]}", "is not a scripted-answer field")
    delay_s = check_number(f"{where}.delay_s", answer.get("delay_s", 0.0))
    forms = [name for name in ("ok", "drop", "code", "raw_body") if name in answer]
    if len(forms) != 1:
        raise SandboxInputError(where, "must have exactly one of ok, drop, code, raw_body")
    form = forms[0]
    if form in {"ok", "drop"}:
        if answer[form] is not True:
            raise SandboxInputError(f"{where}.{form}", "must be true")
        if form == "drop":
            return Scripted(replace(DROP, delay_s=delay_s), delay_s)
        return Scripted(None, delay_s, _headers(where, answer))
    status, headers = _status(where, answer), _headers(where, answer)
    build = _raw_reply if form == "raw_body" else _error_reply
    return Scripted(build(where, answer, status, headers, delay_s), delay_s)


def _error_reply(
    where: str, answer: dict[str, Any], status: int, headers: dict[str, str], delay_s: float
) -> Reply:
    code = answer["code"]
    if not isinstance(code, str) or not code:
        raise SandboxInputError(f"{where}.code", "must be a non-empty string")
    errors: dict[str, Any] = {"code": code}
    for name in ("group", "description", "params"):
        if name in answer:  # absent keys stay absent: clients must cope with thin bodies
            errors[name] = answer[name]
    body = json_bytes({"isSuccess": False, "errors": errors})
    return Reply(code=code, status=status, body=body, headers=headers, delay_s=delay_s)


def _status(where: str, answer: dict[str, Any]) -> int:
    status = answer.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise SandboxInputError(f"{where}.status", "must be an HTTP status from 100 to 599")
    return status


def _headers(where: str, answer: dict[str, Any]) -> dict[str, str]:
    headers = answer.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise SandboxInputError(f"{where}.headers", "must map header names to strings")
    return headers


def _raw_reply(
    where: str, answer: dict[str, Any], status: int, headers: dict[str, str], delay_s: float
) -> Reply:
    raw = answer["raw_body"]
    if not isinstance(raw, str):
        raise SandboxInputError(f"{where}.raw_body", "must be a string")
    content_type = answer.get("content_type", "text/html" if raw else None)
    if content_type is not None and not isinstance(content_type, str):
        raise SandboxInputError(f"{where}.content_type", "must be a string or null")
    return Reply(
        code=http_code(status),
        status=status,
        body=raw.encode(),
        content_type=content_type,
        headers=headers,
        delay_s=delay_s,
    )
