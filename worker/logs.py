"""Logging as structured events, configured once per process.

One processor chain serves structlog and the standard library (Celery, kombu, httpx), so every
line is rendered the same way and passes the same two filters: secrets are replaced by ``***``
and phone numbers are masked (``90532*****67``). The secrets are the process's ``SECRETS``: every
one it has held since it started, a key read again after a rotation included, which the Gateway
client's answers are redacted with as well.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
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


def _hidden(text: str, spans: list[tuple[int, int]]) -> str:
    """The text with each span (overlapping ones merged) replaced by ``***``."""
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


class Secrets:
    """Every secret held since it was made: what redaction hides. It only grows, so a key rotated
    out stays hidden (a late answer, a log line, can still quote it); ``add`` is cheap for one it
    holds already, so the sending path can hand it each key it uses.

    It keeps the fragments to look for (each run of 8 characters of a secret, lower-cased; a
    shorter secret whole), so hiding costs one look-up per position of the text, however many
    secrets it holds.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._held: frozenset[str] = frozenset()
        self._fragments: dict[int, frozenset[str]] = {}  # by their length
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        if len(secret) < SECRET_MIN_LENGTH or secret in self._held:
            return
        folded = _fold(secret)
        n = min(FRAGMENT_MIN_LENGTH, len(folded))
        new = {folded[start : start + n] for start in range(len(folded) - n + 1)}
        with self._lock:  # readers see the old table or the new one, never half of one
            fragments = dict(self._fragments)
            fragments[n] = fragments.get(n, frozenset()) | new
            self._fragments = fragments
            self._held = self._held | {secret}

    def hide(self, text: str) -> str:
        """The text with every secret held, every fragment of one (8+ characters, any case) and
        every ``Bearer <token>`` replaced by ``***``. Run it before any truncation."""
        text = _BEARER.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
        fragments = self._fragments
        if not fragments:
            return text
        # Case is ignored: an upper-cased key (a proxy's error code) still gives the key away.
        folded = _fold(text)
        spans = [
            (start, start + n)
            for n, known in fragments.items()
            for start in range(len(folded) - n + 1)
            if folded[start : start + n] in known
        ]
        return _hidden(text, spans) if spans else text


# The secrets of this process. Logging is configured once per process, and a forked child keeps
# its parent's configuration: so the secrets it hides are the process's too, and a child that
# reads a rotated key adds it where its own log chain looks.
SECRETS = Secrets()


class Scrubber:
    """A processor that hides secrets (and fragments of them) anywhere in an event and masks
    phone fields."""

    def __init__(self, secrets: Secrets) -> None:
        self._secrets = secrets

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
        return self._secrets.hide(text)


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
    """Configure structlog and the standard library once; ``json=None`` means JSON off a TTY.
    ``secrets`` join the process's ``SECRETS``, which the log lines are scrubbed of."""
    as_json = not sys.stderr.isatty() if json is None else json
    for secret in secrets:
        SECRETS.add(secret)
    scrubber = Scrubber(SECRETS)
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
