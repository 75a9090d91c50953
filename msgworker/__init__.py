"""msgworker's producer API under a name that cannot clash with an app's own ``worker`` package.

``from msgworker import enqueue, TextMessage, Text`` is the same API as ``from worker import ...``
(the same functions and classes), for apps that already have a package called ``worker``.
"""

from __future__ import annotations

from worker import (
    AudioMessage,
    DocumentMessage,
    ImageMessage,
    Interactive,
    InteractiveMessage,
    InvalidMessage,
    Language,
    Media,
    Message,
    Payload,
    Priority,
    PriorityName,
    StoreFull,
    Template,
    TemplateMessage,
    Text,
    TextMessage,
    Unavailable,
    WorkerError,
    enqueue,
    enqueue_async,
    enqueue_many,
    enqueue_many_async,
)

__all__ = [
    "AudioMessage",
    "DocumentMessage",
    "ImageMessage",
    "Interactive",
    "InteractiveMessage",
    "InvalidMessage",
    "Language",
    "Media",
    "Message",
    "Payload",
    "Priority",
    "PriorityName",
    "StoreFull",
    "Template",
    "TemplateMessage",
    "Text",
    "TextMessage",
    "Unavailable",
    "WorkerError",
    "enqueue",
    "enqueue_async",
    "enqueue_many",
    "enqueue_many_async",
]
