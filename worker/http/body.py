"""Request bodies: bounded before they are read whole, then parsed as one JSON document."""

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


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def read_json(request: Request, *, limit: int) -> Any:
    """The body as JSON; BodyTooLarge past ``limit`` bytes (declared or sent), NotJSON else."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(limit)
    try:
        return json.loads(body, parse_constant=_no_constants)
    except RecursionError:
        raise NotJSON("nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, huge integers, NaN
        raise NotJSON(str(exc).partition(":")[0] or "invalid") from None
