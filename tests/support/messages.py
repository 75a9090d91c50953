"""Messages to enqueue in tests."""

from __future__ import annotations

from typing import Any

PHONE = "905321234567"


def text(n: int | str = 0, to: str = PHONE, *, body: str | None = None) -> dict[str, Any]:
    """A text message to ``to``; its body is ``message {n}`` unless given."""
    return {"to": to, "type": "text", "text": {"body": f"message {n}" if body is None else body}}


def template(name: str = "spring_sale", language: str = "en_US", to: str = PHONE) -> dict[str, Any]:
    """A template message to ``to``."""
    return {
        "to": to,
        "type": "template",
        "template": {"name": name, "language": {"code": language}},
    }
