"""How big a message payload may be, checked before anything else reads it; how high a rate
limit may be.

pydantic and ``json.dumps`` recurse, so a payload nested thousands deep makes them raise
RecursionError, and a million-part template or a 50-million-character parameter would be
validated, stored and posted whole. ``shape_problems`` walks the raw payload with its own stack
(never recursing) and stops at the first few problems, so a hostile payload costs little; the
message models then check the fields they know against the Cloud API's own limits, and
``body_size_problem`` bounds the body as it will be posted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from worker.errors import FieldProblem

# The Cloud API's largest text is a template body parameter sent alone (32,768 characters);
# the whole body to post stays within 64 KiB.
BODY_MAX_BYTES = 64 * 1024
STRING_MAX_CHARS = 32_768
# A template with header, body, buttons and a carousel nests about 8 deep and holds a few
# hundred values; these leave room for Meta's next fields and none for abuse.
DEPTH_MAX = 16
ITEMS_MAX = 100  # entries of one object or array
VALUES_MAX = 2_000  # values in the whole payload
# Numbers JSON parsers everywhere read exactly.
INTEGER_MAX = 2**53
PROBLEMS_MAX = 10  # a hostile payload gets a few reasons, not a million
# The sane range of an account's rate limit, configured or announced by the Gateway; beyond it a
# value is refused.
SEC_LIMIT_MAX = 10_000
MIN_LIMIT_MAX = 600_000


def shape_problems(payload: object) -> list[FieldProblem]:
    """Problems of depth, size, counts and numbers anywhere in ``payload``, without recursion."""
    problems: list[FieldProblem] = []
    stack: list[tuple[str, object, int]] = [("", payload, 1)]
    values = 0
    while stack and len(problems) < PROBLEMS_MAX:
        path, value, depth = stack.pop()
        values += 1
        if values > VALUES_MAX:
            problems.append(FieldProblem(path or "message", f"more than {VALUES_MAX} values"))
            break
        problem = _value_problem(value)
        if problem is not None:
            problems.append(FieldProblem(path or "message", problem))
            continue
        if not isinstance(value, Mapping | list | tuple) or not value:
            continue
        if depth >= DEPTH_MAX:
            problems.append(FieldProblem(path or "message", f"nested deeper than {DEPTH_MAX}"))
        elif len(value) > ITEMS_MAX:
            problems.append(FieldProblem(path or "message", f"more than {ITEMS_MAX} entries"))
        else:
            stack += [
                (f"{path}.{key}" if path else key, item, depth + 1)
                for key, item in _children(value)
            ]
    return problems


def _value_problem(value: object) -> str | None:
    if isinstance(value, str | bytes) and len(value) > STRING_MAX_CHARS:
        return f"longer than {STRING_MAX_CHARS} characters"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number (JSON has no NaN or Infinity)"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INTEGER_MAX:
        return f"must be a number within ±{INTEGER_MAX}"
    if isinstance(value, Mapping):
        long_keys = [k for k in value if isinstance(k, str) and len(k) > STRING_MAX_CHARS]
        if long_keys:
            return f"has a key longer than {STRING_MAX_CHARS} characters"
    return None


def _children(
    value: Mapping[object, object] | list[object] | tuple[object, ...],
) -> list[tuple[str, object]]:
    if isinstance(value, Mapping):
        return [(str(key), item) for key, item in value.items()]
    return [(str(index), item) for index, item in enumerate(value)]


def body_size_problem(body: Mapping[str, Any]) -> FieldProblem | None:
    """The body as posted (UTF-8 JSON) must fit in BODY_MAX_BYTES."""
    size = len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
    if size > BODY_MAX_BYTES:
        return FieldProblem("message", f"is {size} bytes as JSON, more than {BODY_MAX_BYTES}")
    return None
