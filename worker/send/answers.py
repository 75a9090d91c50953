"""Reading the Gateway's answers: status, headers and body in; a success or a typed error out.

Pure and total: whatever arrives (HTML from a proxy, an empty body, JSON of the wrong shape,
unknown codes, garbled headers) becomes a `Sent` or a `GatewayRejected`; nothing else is
raised. The HTTP call itself is made in `worker.send.gateway`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import replace
from email.utils import parsedate_to_datetime
from typing import Any

from worker.bounds import MIN_LIMIT_MAX, SEC_LIMIT_MAX
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
# Params are kept whole up to this much JSON, else replaced by a note of their size.
PARAMS_MAX = 1024
# A message id is short and plain; anything else is not an id (the answer is then malformed).
_WAMID = re.compile(r"^[A-Za-z0-9._:=+/-]{1,256}$")
# A wait longer than an hour is a garbled value, not advice to follow: ignored, never clamped.
RETRY_AFTER_MAX_S = 3_600.0
RETRY_AFTER = "retry_after"


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
    """The standard ``Retry-After`` header: delay-seconds or an HTTP date.

    None when absent or unreadable, and when the wait it names is not within 0..an hour (a
    date in the past or years ahead).
    """
    if value is None:
        return None
    if value.strip().isdigit():
        return parse_duration_s(value.strip())
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    seconds = when.timestamp() - now_s
    return seconds if 0 <= seconds <= RETRY_AFTER_MAX_S else None


def read_rate_limit(headers: Mapping[str, str]) -> RateLimitHeaders:
    """The ``X-RateLimit-{sec,min}-{Limit,Remaining}`` headers, where present and sane.

    A limit must be within 1..the sane maximum of its window, a remaining count within 0..that
    maximum and no more than the limit beside it. A value present but out of range is left out
    and named in ``ignored``; one that is not a whole number is simply absent.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    ignored: list[str] = []
    found: dict[str, int | None] = {}
    for span, most in (("sec", SEC_LIMIT_MAX), ("min", MIN_LIMIT_MAX)):
        limit = _whole(lowered.get(f"x-ratelimit-{span}-limit"))
        remaining = _whole(lowered.get(f"x-ratelimit-{span}-remaining"))
        if limit is not None and not 1 <= limit <= most:
            ignored.append(f"{span}_limit")
            limit = None
        if remaining is not None and not 0 <= remaining <= (most if limit is None else limit):
            ignored.append(f"{span}_remaining")
            remaining = None
        found[f"{span}_limit"], found[f"{span}_remaining"] = limit, remaining
    return RateLimitHeaders(**found, ignored=tuple(ignored))


def _whole(raw: str | None) -> int | None:
    text = (raw or "").strip()
    # Twenty digits are already far past every bound: longer runs are not even converted.
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 20 else None


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
    params = _bounded_params(params if isinstance(params, dict) else {})
    # The body's retry_after wins over the header; a wait out of range is ignored and counted.
    stated = params.get("retry_after")
    retry_after_s = parse_duration_s(stated)
    refused = stated is not None and retry_after_s is None
    if retry_after_s is None:
        header = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        retry_after_s = parse_retry_after_header(header, now_s=now_s)
        refused = refused or (header is not None and retry_after_s is None)
    if refused:
        rate_limit = replace(rate_limit, ignored=(*rate_limit.ignored, RETRY_AFTER))
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
    return wamid if isinstance(wamid, str) and _WAMID.match(wamid) else None


def _bounded_params(params: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(params, default=str))
    return params if size <= PARAMS_MAX else {"omitted": f"params of {size} characters"}


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
