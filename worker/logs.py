"""Logging as structured events, configured once per process.

One processor chain serves structlog and the standard library (Celery, kombu, httpx), so every
line is rendered the same way and passes the same two filters: secrets are replaced by ``***``
and phone numbers are masked (``90532*****67``).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "***"
# Fields that carry a recipient's number, wherever they appear in an event (payloads included).
PHONE_FIELDS = frozenset({"to", "phone", "wa_id", "input", "recipient", "recipient_id"})
# Secrets shorter than this are not searched for: they would match ordinary text.
SECRET_MIN_LENGTH = 6


# Any run of this many characters of a secret is hidden, wherever it appears: a prefix cut off
# by a truncation or echoed in a "Bearer <first chars>" is still a leak.
FRAGMENT_MIN_LENGTH = 8
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[^\s\"',;]+")


def redact(text: str, secrets: Iterable[str]) -> str:
    """The text with every secret, every fragment of one (8+ characters) and every
    ``Bearer <token>`` replaced by ``***``. Run it before any truncation.
    """
    text = _BEARER.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
    # Case is ignored: an upper-cased key (a proxy's error code) still gives the key away.
    folded = _fold(text)
    spans: list[tuple[int, int]] = []
    for secret in secrets:
        n = min(FRAGMENT_MIN_LENGTH, len(secret))
        if len(secret) < SECRET_MIN_LENGTH:
            continue
        folded_secret = _fold(secret)
        for start in range(len(folded_secret) - n + 1):
            piece = folded_secret[start : start + n]
            at = folded.find(piece)
            while at != -1:
                spans.append((at, at + n))
                at = folded.find(piece, at + 1)
    if not spans:
        return text
    merged: list[list[int]] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    parts, last = [], 0
    for begin, end in merged:
        parts += [text[last:begin], REDACTED]
        last = end
    return "".join([*parts, text[last:]])


def _fold(text: str) -> str:
    """Lower case, one character for one, so positions in the result are positions in ``text``."""
    if text.isascii():  # every answer and log line, nearly: ASCII lowers one for one, in C
        return text.lower()
    return "".join(c if len(low := c.lower()) != 1 else low for c in text)


def mask_phone(value: str) -> str:
    """``905321234567`` → ``90532*****67``: enough to tell numbers apart, not to dial them."""
    digits = value.lstrip("+")
    if len(digits) < 4:  # too short to show anything
        return "*" * len(digits)
    shown = 5 if len(digits) >= 10 else 2  # short numbers show less
    return digits[:shown] + "*" * (len(digits) - shown - 2) + digits[-2:]


class Scrubber:
    """A processor that hides secrets (and fragments of them) anywhere in an event and masks
    phone fields."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted(
            {s for s in secrets if len(s) >= SECRET_MIN_LENGTH}, key=len, reverse=True
        )

    def __call__(self, _logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        return {key: self._clean(key, value) for key, value in event_dict.items()}

    def _clean(self, key: str, value: Any) -> Any:
        if isinstance(value, str):
            text = self.hide_secrets(value)
            return mask_phone(text) if key in PHONE_FIELDS else text
        if isinstance(value, int) and key in PHONE_FIELDS:
            return mask_phone(str(value))
        if isinstance(value, Mapping):
            return {str(k): self._clean(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(key, item) for item in value]
        if isinstance(value, BaseException):
            return self.hide_secrets(repr(value))
        return value

    def hide_secrets(self, text: str) -> str:
        """The text with every known secret, and every fragment of one, replaced by ``***``."""
        return redact(text, self._secrets) if self._secrets else text


def _shared_processors(scrubber: Scrubber) -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        scrubber,
    ]


def configure_logging(
    *, level: str = "INFO", json: bool | None = None, secrets: Iterable[str] = ()
) -> None:
    """Configure structlog and the standard library once; ``json=None`` means JSON off a TTY."""
    as_json = not sys.stderr.isatty() if json is None else json
    scrubber = Scrubber(secrets)
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(scrubber),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_shared_processors(scrubber),
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Per-message lines cost as much CPU as a Redis round trip and say what the job history and
    # the metrics already say: httpx's request lines, Celery's "received" and "succeeded".
    # LOG_LEVEL=DEBUG shows them again.
    quiet = root.level if root.level <= logging.DEBUG else max(logging.WARNING, root.level)
    for name in ("httpx", "celery.app.trace", "celery.worker.strategy"):
        logging.getLogger(name).setLevel(quiet)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A logger for a module; events are ``noun.verb`` with fields, never f-strings."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
