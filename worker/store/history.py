"""A job's history: one JSON line per event, appended by the scripts and shown by ``job``."""

from __future__ import annotations

import json


def history_event(
    at: float,
    event: str,
    *,
    code: str | None = None,
    action: str | None = None,
    delay_s: float | None = None,
) -> str:
    """One line of a job's history, as stored."""
    return json.dumps(
        {"at": at, "event": event, "code": code, "action": action, "delay_s": delay_s},
        separators=(",", ":"),
    )
