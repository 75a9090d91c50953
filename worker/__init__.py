"""msgworker: resilient WhatsApp message sending through the Connexease Gateway.

The producer API, for apps::

    from worker import TextMessage, Text, enqueue, enqueue_async

    job_id = enqueue(TextMessage(to="+905321234567", text=Text(body="Hi")))
    job_id = await enqueue_async({"to": "905321234567", "type": "text", "text": {"body": "Hi"}})

Settings come from the environment (``MSGWORKER_*``) on first use. Importing this package never
imports Celery: a producer needs only Redis. An app whose own package is called ``worker``
imports the same API as ``msgworker``.
"""

from __future__ import annotations

from worker.api import enqueue, enqueue_async, enqueue_many, enqueue_many_async
from worker.errors import InvalidMessage, StoreFull, Unavailable, WorkerError
from worker.models import (
    AudioMessage,
    DocumentMessage,
    ImageMessage,
    Interactive,
    InteractiveMessage,
    Language,
    Media,
    Message,
    Template,
    TemplateMessage,
    Text,
    TextMessage,
)
from worker.producer import Payload, Priority, PriorityName

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
