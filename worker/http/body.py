"""Request bodies: bounded while they stream, then parsed as one strict JSON document.

Every route that reads a body reads it through ``read_body``: a declared Content-Length over
the route's limit is refused before a byte is read, and a body that streams past it is refused
as soon as it does, so no request makes the service hold more than its limit plus one chunk.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from worker.http.problems import BodyTooLarge, NotJSON

KIB = 1024
MIB = 1024 * KIB
# One message (the largest payload the models accept is far smaller) and a batch of 1,000.
SINGLE_MAX_BYTES = MIB
BATCH_MAX_BYTES = 16 * MIB


async def read_body(request: Request, *, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes: BodyTooLarge as soon as it is declared or sent
    larger, before more than one chunk past the limit is held."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(limit)
    return bytes(body)


async def read_json(request: Request, *, limit: int) -> Any:
    """The body as JSON (``parse_json``), at most ``limit`` bytes (``read_body``)."""
    return parse_json(await read_body(request, limit=limit))


class _DuplicateKey(ValueError):
    pass


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different: with a key twice, which value counts would
    depend on the parser, so neither does."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(f"duplicate key {json.dumps(key)[:100]}")
            seen.add(key)
    return found


def parse_json(body: bytes) -> Any:
    """One JSON document in UTF-8 (no other encoding, no NaN or Infinity, no key twice in an
    object); NotJSON naming what is wrong otherwise."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise NotJSON("not UTF-8") from None
    try:
        return json.loads(text, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise NotJSON("nested too deeply") from None
    except _DuplicateKey as exc:
        raise NotJSON(str(exc)) from None
    except ValueError as exc:  # JSONDecodeError, huge integers, NaN
        raise NotJSON(str(exc).partition(":")[0] or "invalid") from None
