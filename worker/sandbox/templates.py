"""Meta's template reviews in the sandbox: an event posted on demand pauses, disables or
restarts a template, and goes out as the ``message_template_status_update`` webhook."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from worker.sandbox.config import SandboxConfig, SandboxInputError
from worker.sandbox.meta import TEMPLATE_EVENTS, TEMPLATE_RESTARTS, template_id

EVENT_FIELDS = frozenset({"event", "name", "language", "waba_id", "reason"})


@dataclass(frozen=True)
class TemplateEvent:
    """One review of a template (``name:language``), for the business account ``waba_id``."""

    event: str
    template: str
    waba_id: str
    reason: str

    def webhook_body(self, at: float) -> dict[str, Any]:
        """The event in the shape Meta's webhook (forwarded by the Gateway) carries it."""
        name, language = self.template.split(":")
        value = {
            "event": self.event,
            "message_template_id": template_id(self.template),
            "message_template_name": name,
            "message_template_language": language,
            "reason": self.reason,
        }
        change = {"field": "message_template_status_update", "value": value}
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": self.waba_id, "time": int(at), "changes": [change]}],
        }


def parse_template_event(spec: Mapping[str, Any]) -> TemplateEvent:
    """``{"event", "name", "language", "waba_id"?, "reason"?}``, each field checked."""
    unknown = sorted(set(spec) - EVENT_FIELDS)
    if unknown:
        raise SandboxInputError(unknown[0], "is not a template event field")
    event = spec.get("event")
    if event not in TEMPLATE_EVENTS:
        raise SandboxInputError("event", f"must be one of {', '.join(sorted(TEMPLATE_EVENTS))}")
    for name in ("name", "language"):
        value = spec.get(name)
        if (
            not isinstance(value, str)
            or not value
            or any(ch == ":" or ch.isspace() for ch in value)
        ):
            raise SandboxInputError(name, "must be a non-empty string without ':' or spaces")
    template = f"{spec['name']}:{spec['language']}"
    waba_id, reason = spec.get("waba_id", "sandbox"), spec.get("reason", "NONE")
    for name, value in (("waba_id", waba_id), ("reason", reason)):
        if not isinstance(value, str) or not value:
            raise SandboxInputError(name, "must be a non-empty string")
    return TemplateEvent(str(event), template, waba_id, reason)


def after_template_event(config: SandboxConfig, event: TemplateEvent) -> SandboxConfig:
    """The knobs once ``event`` is applied: PAUSED and DISABLED stop the template, APPROVED and
    REINSTATED restart it, any other review changes nothing."""
    if event.event not in {"PAUSED", "DISABLED", *TEMPLATE_RESTARTS}:
        return config
    paused = [t for t in config.paused_templates if t != event.template]
    disabled = [t for t in config.disabled_templates if t != event.template]
    if event.event == "PAUSED":
        paused.append(event.template)
    elif event.event == "DISABLED":
        disabled.append(event.template)
    return replace(config, paused_templates=tuple(paused), disabled_templates=tuple(disabled))
