"""Reading the Gateway's answers: status, headers and body in; a success or a typed error out.

Pure and total: whatever arrives (HTML from a proxy, an empty body, JSON of the wrong shape,
unknown codes, garbled headers) becomes a `Sent` or a `GatewayRejected`; nothing else is
raised. The only place that speaks HTTP is `worker.gateway`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from worker.errors import GatewayRejected
from worker.outcome import RateLimitHeaders, Sent, http_code

# Codes and groups become metric labels: only well-formed identifiers are kept, so a
# misbehaving upstream cannot explode label cardinality or smuggle text into dashboards.
_IDENTIFIER = re.compile(r"^[A-Z][A-Z0-9_]{0,39}$")
_DURATION = re.compile(
    r"^\s*(?P<value>\d+(?:\.\d+)?|\.\d+)\s*"
    r"(?P<unit>ms|msec|milliseconds?|s|secs?|seconds?|m|mins?|minutes?)?\s*$",
    re.IGNORECASE,
)
DESCRIPTION_MAX = 300
# A wait longer than a day is a garbled value, not advice to follow.
RETRY_AFTER_MAX_S = 86_400.0


def parse_duration_s(value: object) -> float | None:
    """Seconds from ``1``, ``2.5``, ``"1s"``, ``"60s"``, ``"1 seconds"``, ``"500ms"``, ``"2m"``.

    None when the value is missing, negative, absurd or unreadable.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match["value"]) * _unit_seconds((match["unit"] or "s").lower())
    else:
        return None
    if not math.isfinite(seconds) or not 0 <= seconds <= RETRY_AFTER_MAX_S:
        return None
    return seconds


def _unit_seconds(unit: str) -> float:
    if unit.startswith(("ms", "milli")):
        return 0.001
    if unit.startswith("m"):
        return 60.0
    return 1.0


def parse_retry_after_header(value: str | None, *, now_s: float) -> float | None:
    """The standard ``Retry-After`` header: delay-seconds or an HTTP date."""
    if value is None:
        return None
    if (seconds := parse_duration_s(value.strip())) is not None and value.strip().isdigit():
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return min(max(0.0, when.timestamp() - now_s), RETRY_AFTER_MAX_S)


def read_rate_limit(headers: Mapping[str, str]) -> RateLimitHeaders:
    """The ``X-RateLimit-{sec,min}-{Limit,Remaining}`` headers, where present and numeric."""
    lowered = {key.lower(): value for key, value in headers.items()}

    def number(name: str) -> int | None:
        raw = lowered.get(name, "").strip()
        return int(raw) if raw.isascii() and raw.isdigit() else None

    return RateLimitHeaders(
        sec_limit=number("x-ratelimit-sec-limit"),
        sec_remaining=number("x-ratelimit-sec-remaining"),
        min_limit=number("x-ratelimit-min-limit"),
        min_remaining=number("x-ratelimit-min-remaining"),
    )


def interpret(
    status: int, headers: Mapping[str, str], body: bytes, *, now_s: float
) -> Sent | GatewayRejected:
    """Classify one HTTP answer. Never raises."""
    rate_limit = read_rate_limit(headers)
    document = _json_object(body)
    if 200 <= status < 300 and document is not None:
        wamid = _wamid(document)
        if wamid is not None and document.get("isSuccess", True) is not False:
            return Sent(wamid=wamid, status=status, rate_limit=rate_limit)

    errors = _errors_object(document)
    params = errors.get("params")
    params = params if isinstance(params, dict) else {}
    retry_after_s = parse_duration_s(params.get("retry_after"))
    if retry_after_s is None:
        header = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        retry_after_s = parse_retry_after_header(header, now_s=now_s)
    return GatewayRejected(
        code=_identifier(errors.get("code")) or http_code(status),
        group=_identifier(errors.get("group")),
        status=status,
        description=_description(errors, document, headers, body, status),
        params=params,
        retry_after_s=retry_after_s,
        rate_limit=rate_limit,
    )


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return document if isinstance(document, dict) else None


def _wamid(document: dict[str, Any]) -> str | None:
    data = document.get("data")
    messages = data.get("messages") if isinstance(data, dict) else None
    first = messages[0] if isinstance(messages, list) and messages else None
    wamid = first.get("id") if isinstance(first, dict) else None
    return wamid if isinstance(wamid, str) and wamid else None


def _errors_object(document: dict[str, Any] | None) -> dict[str, Any]:
    """The ``errors`` object; some proxies and versions send a list of them."""
    errors = document.get("errors") if document else None
    if isinstance(errors, list):
        errors = next((e for e in errors if isinstance(e, dict)), None)
    return errors if isinstance(errors, dict) else {}


def _identifier(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    candidate = value.strip().upper()
    return candidate if _IDENTIFIER.match(candidate) else None


def _description(
    errors: dict[str, Any],
    document: dict[str, Any] | None,
    headers: Mapping[str, str],
    body: bytes,
    status: int,
) -> str:
    described = errors.get("description")
    if isinstance(described, str) and described.strip():
        return described.strip()[:DESCRIPTION_MAX]
    if 200 <= status < 300 and document is not None:
        return "a success answer without a message id"
    if document is not None:
        return "a JSON answer without an error description"
    if not body:
        return "an empty answer"
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "unknown")
    # The body of a proxy's page is not echoed: it may be large and says nothing useful.
    return f"a non-JSON answer ({content_type.split(';')[0].strip()[:60]}, {len(body)} bytes)"
