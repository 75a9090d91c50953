"""A producer app as users write one, type-checked with mypy --strict by tests/test_producer_api.py.

It uses only the public API: the message models, enqueue and enqueue_async, the errors.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from msgworker import (
    InvalidMessage,
    Language,
    Template,
    TemplateMessage,
    Text,
    TextMessage,
    Unavailable,
    enqueue,
    enqueue_async,
    enqueue_many,
)


def welcome(phone: str) -> str:
    message = TextMessage(to=phone, text=Text(body="Welcome!"))
    return enqueue(message, idempotency_key=f"welcome-{phone}", priority="high")


def reminder(phone: str) -> str | None:
    message = TemplateMessage(
        to=phone, template=Template(name="appointment_reminder", language=Language(code="en"))
    )
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    try:
        return enqueue(message, send_at=tomorrow, ttl_s=3600.0, priority="bulk")
    except Unavailable:
        return None  # Redis is down: tell the caller to try again
    except InvalidMessage as exc:
        for problem in exc.problems:
            print(problem.field, problem.message)  # noqa: T201 - a sample
        raise


def newsletter(phones: list[str]) -> list[str]:
    return enqueue_many(
        [{"to": phone, "type": "text", "text": {"body": "News"}} for phone in phones]
    )


async def on_signup(phone: str) -> str:
    return await enqueue_async(TextMessage(to=phone, text=Text(body="Hi")), account="default")


if __name__ == "__main__":
    print(welcome("+905321234567"), reminder("905321234567"))  # noqa: T201
    print(newsletter(["905321234567"]), asyncio.run(on_signup("905321234567")))  # noqa: T201
