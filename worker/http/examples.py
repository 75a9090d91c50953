"""An example of each message type, and of the requests that carry them, for the API's document.

Each is a request the service accepts as it is (tests/http/test_openapi_document.py enqueues
them through the producer's own validation and checks them against the document's schemas), so
a user who copies one from /docs gets a 202.
"""

from __future__ import annotations

from typing import Any

TO = "+90 532 123 45 67"

MESSAGES: dict[str, dict[str, Any]] = {
    "text": {"to": TO, "type": "text", "text": {"body": "Your order 1042 has shipped."}},
    "image": {
        "to": TO,
        "type": "image",
        "image": {"link": "https://example.com/receipts/1042.png", "caption": "Your receipt"},
    },
    "audio": {"to": TO, "type": "audio", "audio": {"id": "1013859600285441"}},
    "document": {
        "to": TO,
        "type": "document",
        "document": {
            "link": "https://example.com/invoices/1042.pdf",
            "filename": "invoice-1042.pdf",
        },
    },
    "template": {
        "to": TO,
        "type": "template",
        "template": {
            "name": "order_shipped",
            "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "1042"}]}],
        },
    },
    "interactive": {
        "to": TO,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Keep your appointment on Monday at 10:00?"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "keep", "title": "Keep it"}},
                    {"type": "reply", "reply": {"id": "move", "title": "Move it"}},
                ]
            },
        },
    },
}

ENVELOPE: dict[str, Any] = {
    "message": MESSAGES["text"],
    "idempotency_key": "order-1042-shipped",
    "priority": "high",
    "ttl_s": 3600,
}

BATCH: dict[str, Any] = {"messages": [ENVELOPE, MESSAGES["template"]]}


def single_request() -> dict[str, dict[str, Any]]:
    """``POST /v1/messages``'s examples by name: each message type bare, and one envelope."""
    bare = {kind: {"summary": f"A {kind} message", "value": m} for kind, m in MESSAGES.items()}
    return {**bare, "envelope": {"summary": "A text message with options", "value": ENVELOPE}}


def batch_request() -> dict[str, dict[str, Any]]:
    """``POST /v1/messages/batch``'s example."""
    return {"batch": {"summary": "An envelope and a bare template message", "value": BATCH}}
