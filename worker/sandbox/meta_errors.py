"""The errors of Meta's Cloud API the sandbox plays, as its status webhooks carry them: the table
the sandbox's knobs are checked against and its verdicts are drawn from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MetaError:
    """One error of Meta's Cloud API, as the status webhooks carry it."""

    code: int
    title: str
    details: str

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "title": self.title,
            "message": self.title,
            "error_data": {"details": self.details},
        }


UNDELIVERABLE = MetaError(
    131026, "Message undeliverable", "Message failed to send because of an unknown error."
)
PAIR_RATE_LIMIT = MetaError(
    131056,
    "(Business Account, Consumer Account) pair rate limit hit",
    "Too many messages sent from the sender phone number to the same recipient phone number "
    "in a short period of time.",
)
TEMPLATE_PAUSED = MetaError(
    132015, "Template is Paused", "Template is paused due to low quality so it cannot be sent."
)
TEMPLATE_DISABLED = MetaError(
    132016,
    "Template is Disabled",
    "Template has been paused too many times due to low quality and is now permanently disabled.",
)
META_ERRORS: dict[int, MetaError] = {
    error.code: error
    for error in (
        UNDELIVERABLE,
        PAIR_RATE_LIMIT,
        TEMPLATE_PAUSED,
        TEMPLATE_DISABLED,
        MetaError(
            131047,
            "Re-engagement message",
            "Message failed to send because more than 24 hours have passed since the customer "
            "last replied to this number.",
        ),
        MetaError(
            131049,
            "This message was not delivered to maintain healthy ecosystem engagement.",
            "In order to maintain a healthy ecosystem engagement, the message failed to be "
            "delivered.",
        ),
        MetaError(
            131050,
            "Unable to deliver the message. This recipient has chosen to stop receiving "
            "marketing messages on WhatsApp from your business.",
            "The user has stopped marketing messages from this business.",
        ),
        MetaError(
            131048,
            "Spam rate limit hit",
            "Message failed to send because there are restrictions on how many messages can be "
            "sent from this phone number.",
        ),
        MetaError(130429, "Rate limit hit", "Cloud API message throughput has been reached."),
    )
}
