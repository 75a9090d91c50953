"""What WhatsApp (Meta) decides about a message the Gateway accepted, played by the sandbox.

The Gateway answers 200 with a wamid and hands the message to Meta; Meta's verdict comes back
later in the status webhooks. Most messages are delivered. Some fail for reasons about one
recipient, one template or the sender's standing, never about the key:

- a recipient sent to faster than the pair pacing allows (``pair_interval_s``, ``pair_burst``)
  fails 131056, and the failed message does not count against the pair;
- a template configured as paused (``paused_templates``) fails 132015, a disabled one 132016;
- a recipient on ``recipient_errors`` fails with the code given for it, one on
  ``failing_recipients`` with 131026.

Templates are named ``name:language`` (``spring_sale:en_US``), as the webhooks name them.
"""

from __future__ import annotations

import zlib
from typing import Any

from worker.sandbox.accounts import SlidingWindow
from worker.sandbox.config import SandboxConfig
from worker.sandbox.meta_errors import (
    META_ERRORS,
    PAIR_RATE_LIMIT,
    TEMPLATE_DISABLED,
    TEMPLATE_PAUSED,
    UNDELIVERABLE,
    MetaError,
)

# Pair windows of recipients not sent to lately are forgotten past this many pairs.
PAIRS_MAX = 100_000


# Meta's template review events; PAUSED and DISABLED stop a template, these two restart it.
TEMPLATE_EVENTS = frozenset(
    {"APPROVED", "REINSTATED", "PAUSED", "DISABLED", "FLAGGED", "REJECTED", "PENDING_DELETION"}
)
TEMPLATE_RESTARTS = frozenset({"APPROVED", "REINSTATED"})


def template_of(payload: Any) -> str | None:
    """``name:language`` of a template message, None for any other."""
    if not isinstance(payload, dict) or payload.get("type") != "template":
        return None
    template = payload.get("template")
    if not isinstance(template, dict):
        return None
    language = template.get("language")
    code = language.get("code") if isinstance(language, dict) else None
    return f"{template.get('name')}:{code}"


def template_id(template: str) -> int:
    """A stable id for a template, as Meta gives each one."""
    return zlib.crc32(template.encode()) + 10**15


class Meta:
    """Meta's verdicts on accepted messages; remembers what each pair was sent lately."""

    def __init__(self) -> None:
        self._sent: dict[tuple[str, str], SlidingWindow] = {}
        self._forget_past = PAIRS_MAX

    def verdict(
        self, config: SandboxConfig, key_label: str, payload: Any, wa_id: str, now: float
    ) -> MetaError | None:
        """The error Meta gives a message the key ``key_label`` just had accepted (None:
        delivered), in the order Meta checks: the template, the recipient, the pair's pace."""
        template = template_of(payload)
        if template in config.disabled_templates:
            return TEMPLATE_DISABLED
        if template in config.paused_templates:
            return TEMPLATE_PAUSED
        if wa_id in config.recipient_errors:
            return META_ERRORS[config.recipient_errors[wa_id]]
        if wa_id in config.failing_recipients:
            return UNDELIVERABLE
        if not self._paced((key_label, wa_id), now, config.pair_interval_s, config.pair_burst):
            return PAIR_RATE_LIMIT
        return None

    def _paced(self, pair: tuple[str, str], now: float, interval_s: float, burst: int) -> bool:
        """Whether a message to ``pair`` at ``now`` is within the pair rate limit; counted if it
        is (a failed message does not count against the pair)."""
        if interval_s <= 0:
            return True
        window = self._sent.get(pair)
        if window is None or window.span_s != interval_s:
            if len(self._sent) >= self._forget_past:
                self._forget_idle(now)
                # Pairs all still paced: look again once the table has doubled, not at each
                # new pair (a scan per pair would cost the square of their number).
                self._forget_past = max(PAIRS_MAX, 2 * len(self._sent))
            window = self._sent[pair] = SlidingWindow(interval_s)
        if window.used(now) >= burst:
            return False
        window.add(now)
        return True

    def clear(self) -> None:
        self._sent.clear()
        self._forget_past = PAIRS_MAX

    def _forget_idle(self, now: float) -> None:
        for pair in [pair for pair, window in self._sent.items() if not window.used(now)]:
            del self._sent[pair]
