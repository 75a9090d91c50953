"""The sandbox gateway's knobs and the checks every value set at start or at runtime passes."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from worker.errors import ConfigError
from worker.sandbox.meta_errors import META_ERRORS

FAULT_KINDS: tuple[str, ...] = ("auth_004", "html_502", "empty_503", "drop", "slow")
RETRY_AFTER_FORMATS: tuple[str, ...] = ("seconds", "s", "number", "ms")


class SandboxInputError(ConfigError):
    """Raised when a sandbox setting, key, top-up or script is refused; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


def check_number(name: str, value: Any, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SandboxInputError(name, "must be a number")
    if not (math.isfinite(value) and low <= value <= high):
        raise SandboxInputError(name, f"must be between {low:g} and {high:g}")
    return float(value)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SandboxInputError(name, "must be a whole number of at least 1")
    return value


def check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SandboxInputError(name, "must be true or false")
    return value


def _fault_kinds(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        raise SandboxInputError(name, f"must be a non-empty list of {', '.join(FAULT_KINDS)}")
    unknown = [kind for kind in value if kind not in FAULT_KINDS]
    if unknown:
        raise SandboxInputError(name, f"unknown kind {unknown[0]!r}; known: {FAULT_KINDS}")
    return tuple(value)


def _retry_after_format(name: str, value: Any) -> str:
    if value not in RETRY_AFTER_FORMATS:
        raise SandboxInputError(name, f"must be one of {', '.join(RETRY_AFTER_FORMATS)}")
    return str(value)


def _seed(name: str, value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise SandboxInputError(name, "must be a whole number or null")
    return value


def _webhook_url(name: str, value: Any) -> str | None:
    if value is not None and (
        not isinstance(value, str) or not value.startswith(("http://", "https://"))
    ):
        raise SandboxInputError(name, "must be an http(s) URL or null")
    return value


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or any(ch.isspace() for ch in value):
        raise SandboxInputError(name, "must be a string without spaces")
    return value


def _recipients(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise SandboxInputError(name, "must be a list of phone numbers")
    digits = tuple(str(item).lstrip("+") for item in value)
    if not all(item.isdigit() for item in digits):
        raise SandboxInputError(name, "must be a list of phone numbers")
    return digits


def _templates(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise SandboxInputError(name, "must be a list of templates as name:language")
    for item in value:
        if not isinstance(item, str) or item.count(":") != 1 or any(ch.isspace() for ch in item):
            raise SandboxInputError(name, f"{item!r} is not a template as name:language")
    return tuple(value)


def _recipient_errors(name: str, value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise SandboxInputError(name, "must map phone numbers to WhatsApp error codes")
    known = ", ".join(str(code) for code in META_ERRORS)
    errors = {}
    for number, code in value.items():
        digits = str(number).lstrip("+")
        if not digits.isdigit():
            raise SandboxInputError(name, f"{number!r} is not a phone number")
        if code not in META_ERRORS or isinstance(code, bool):
            raise SandboxInputError(name, f"{code!r} is not one of {known}")
        errors[digits] = code
    return errors


KNOBS: dict[str, Callable[[str, Any], Any]] = {
    "rate_per_sec": _positive_int,
    "rate_per_min": _positive_int,
    "balance": lambda name, value: check_number(name, value, -math.inf),
    "fault_rate": lambda name, value: check_number(name, value, 0.0, 1.0),
    "latency_ms": check_number,
    "timeout_fault_s": check_number,
    "seed": _seed,
    "fault_kinds": _fault_kinds,
    "retry_after_format": _retry_after_format,
    "webhook_url": _webhook_url,
    "webhook_secret": _text,
    "webhook_sent_s": check_number,
    "webhook_delivered_s": check_number,
    "webhook_read_s": check_number,
    "failing_recipients": _recipients,
    "recipient_errors": _recipient_errors,
    "pair_interval_s": lambda name, value: check_number(name, value, 0.0, 3600.0),
    "pair_burst": _positive_int,
    "paused_templates": _templates,
    "disabled_templates": _templates,
}


@dataclass
class SandboxConfig:
    """The sandbox's starting knobs; most can be changed later through ``POST /sandbox/config``."""

    api_keys: tuple[str, ...] = ("sk_sandbox",)
    rate_per_sec: int = 80
    rate_per_min: int = 4800
    balance: float = 1000.0
    fault_rate: float = 0.0
    latency_ms: float = 0.0
    timeout_fault_s: float = 30.0
    seed: int | None = None
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    retry_after_format: str = "seconds"
    # Status webhooks for accepted messages, posted to webhook_url (none without it) this many
    # seconds after acceptance; recipients on failing_recipients get failed (131026) instead.
    webhook_url: str | None = None
    webhook_secret: str = ""
    webhook_sent_s: float = 0.0
    webhook_delivered_s: float = 0.05
    webhook_read_s: float = 0.1
    failing_recipients: tuple[str, ...] = ()
    # Meta's own verdicts on accepted messages (see worker.sandbox.meta): recipients that fail
    # with a given code, pair pacing (an interval of 0 turns it off), paused/disabled templates.
    recipient_errors: dict[str, int] = field(default_factory=dict)
    pair_interval_s: float = 0.0
    pair_burst: int = 1
    paused_templates: tuple[str, ...] = ()
    disabled_templates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for knob in fields(self):
            if knob.name != "api_keys":
                setattr(self, knob.name, KNOBS[knob.name](knob.name, getattr(self, knob.name)))
        for key in self.api_keys:
            check_api_key(key)
        if len(set(self.api_keys)) != len(self.api_keys):
            raise SandboxInputError("api_keys", "must not repeat a key")


def check_api_key(value: Any) -> str:
    if not isinstance(value, str) or not value or any(ch.isspace() for ch in value):
        raise SandboxInputError("api_key", "must be a non-empty string without spaces")
    return value
