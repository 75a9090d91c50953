"""The outcome routing decision: pure, table-driven, no I/O beyond loading the table.

``decide(outcome, attempt, policy)`` says what to do with one attempt's outcome; the table in
``config/routing.toml`` says which action each code, group, status or transport failure takes.
"""

from __future__ import annotations

import random
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from worker.errors import ConfigError
from worker.outcome import EXPIRED, OK, Outcome

# A reschedule waits what the Gateway said, never less; the jitter only spreads the herd.
RESCHEDULE_JITTER_SHARE = 0.1
RESCHEDULE_JITTER_MAX_S = 0.5
DEFAULT_RETRY_AFTER_S = 1.0


class Action(StrEnum):
    SENT = "sent"
    RESCHEDULE = "reschedule"
    BACKOFF = "backoff"
    PARK = "park"
    HALT = "halt"


class ParkReason(StrEnum):
    PERMANENT = "permanent"
    BILLING = "billing"
    RETRIES_EXHAUSTED = "retries_exhausted"
    EXPIRED = "expired"
    AMBIGUOUS = "ambiguous"
    UNDELIVERED = "undelivered"
    OUTSIDE_WINDOW = "outside_window"  # 131047: free-form outside the 24-hour window
    OPTED_OUT = "opted_out"  # 131050: the user stopped marketing messages


class Rule(BaseModel):
    """One table entry: an action and, for park, its reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["reschedule", "backoff", "park", "halt"]
    reason: Literal["permanent", "billing", "ambiguous"] | None = None

    @model_validator(mode="after")
    def _reason_only_for_park(self) -> Rule:
        if self.reason is not None and self.action != "park":
            raise ValueError(f"reason is only for park, not {self.action}")
        return self

    @property
    def park_reason(self) -> ParkReason:
        return ParkReason(self.reason or ParkReason.PERMANENT)


class ReceiptRule(BaseModel):
    """What a receipt that says failed, with one WhatsApp error code, leads to (``ReceiptAction``
    in ``store/receipts.py`` names the same actions): ``reason`` for park, ``delay`` for
    reschedule (which setting says how long)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["park", "drop", "reschedule", "pause_bulk", "hold_template"] = "park"
    reason: Literal["undelivered", "outside_window", "opted_out"] | None = None
    delay: Literal["pair_interval", "marketing"] | None = None

    @model_validator(mode="after")
    def _fields_of_their_action(self) -> ReceiptRule:
        if self.reason is not None and self.action != "park":
            raise ValueError(f"reason is only for park, not {self.action}")
        if (self.delay is not None) != (self.action == "reschedule"):
            raise ValueError("reschedule needs a delay (pair_interval or marketing), and only it")
        return self

    @property
    def park_reason(self) -> ParkReason:
        return ParkReason(self.reason or ParkReason.UNDELIVERED)


WhatsAppCode = Annotated[str, Field(pattern=r"^[0-9]{1,9}$")]


class ReceiptRouting(BaseModel):
    """The ``[delivery]`` part: failed receipts by WhatsApp error code, else the default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    codes: dict[WhatsAppCode, ReceiptRule] = Field(default_factory=dict)
    default: ReceiptRule = ReceiptRule()

    def rule_for(self, code: int | None) -> ReceiptRule:
        return self.codes.get(str(code), self.default) if code is not None else self.default


def undelivered_code(code: int | None) -> str:
    """The dead-letter code of an undelivered job: ``WA_131026``, ``WA_UNKNOWN`` without one."""
    return "WA_UNKNOWN" if code is None else f"WA_{code}"


# WhatsApp error codes that become metric labels (the documented delivery failures); any other
# code is counted as OTHER, so a payload cannot create series. The dead letter keeps the code.
KNOWN_WHATSAPP_CODES = frozenset(
    {
        368, 131000, 131005, 131008, 131009, 131016, 131021, 131026, 131031, 131042, 131045,
        131047, 131048, 131049, 131050, 131051, 131052, 131053, 131056, 130429, 130472,
        132000, 132001, 132005, 132007, 132012, 132015, 132016, 133010,
    }
)  # fmt: skip


def counted_undelivered_codes(routing: ReceiptRouting) -> frozenset[str]:
    """The undelivered codes (``undelivered_code``) failed deliveries are counted by in metrics,
    by serve and the workers alike: the known ones and those the routing names."""
    codes = KNOWN_WHATSAPP_CODES | {int(code) for code in routing.codes}
    return frozenset(undelivered_code(code) for code in codes)


StatusKey = Annotated[str, Field(pattern=r"^([1-5][0-9][0-9]|[1-5]xx)$")]


class RoutingTable(BaseModel):
    """The whole table, as in ``config/routing.toml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    codes: dict[str, Rule] = Field(default_factory=dict)
    groups: dict[str, Rule] = Field(default_factory=dict)
    statuses: dict[StatusKey, Rule] = Field(default_factory=dict)
    transport: dict[Literal["CONNECTION", "TIMEOUT", "ambiguous"], Rule] = Field(
        default_factory=dict
    )
    default: Rule
    delivery: ReceiptRouting = ReceiptRouting()

    def rule_for(self, outcome: Outcome) -> Rule:
        """Resolution order: code → group → status → status class → transport → default."""
        if (rule := self.codes.get(outcome.code)) is not None:
            return rule
        if outcome.group is not None and (rule := self.groups.get(outcome.group)) is not None:
            return rule
        if outcome.status is not None:
            for key in (str(outcome.status), f"{outcome.status // 100}xx"):
                if (rule := self.statuses.get(key)) is not None:
                    return rule
        if outcome.is_transport:
            if outcome.ambiguous and (rule := self.transport.get("ambiguous")) is not None:
                return rule
            for key, rule in self.transport.items():
                if key == outcome.code:
                    return rule
        return self.default


def default_routing_path() -> Path:
    """The table shipped in the wheel, else the checkout's ``config/routing.toml``."""
    packaged = Path(__file__).with_name("routing.toml")
    return packaged if packaged.exists() else Path(__file__).parents[2] / "config" / "routing.toml"


def load_routing_table(path: Path | None = None) -> RoutingTable:
    """Read and validate the table; any problem is a ConfigError naming the file and the entry."""
    path = path or default_routing_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"routing table {path}: cannot read it ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"routing table {path}: not valid TOML ({exc})") from None
    try:
        return RoutingTable.model_validate(raw)
    except ValidationError as exc:
        problems = [
            ".".join(str(p) for p in e["loc"]) + ": " + str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise ConfigError(f"routing table {path}: " + "; ".join(problems)) from None


@dataclass(frozen=True)
class Policy:
    """Everything the decision needs: the table and the retry numbers from settings."""

    table: RoutingTable
    max_attempts: int = 8
    max_reschedules: int = 100
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 300.0


@dataclass(frozen=True)
class Attempt:
    """How far a job has come: Gateway calls made (this one included) and reschedules so far."""

    calls: int
    reschedules: int = 0


@dataclass(frozen=True)
class Decision:
    """What to do next. ``delay_s`` for reschedule and backoff, ``reason`` for park."""

    action: Action
    delay_s: float = 0.0
    reason: ParkReason | None = None

    @classmethod
    def park(cls, reason: ParkReason) -> Decision:
        return cls(Action.PARK, reason=reason)


def backoff_delay_s(retry: int, *, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(cap, base·2^retry)]; ``retry`` counts from 0."""
    # Past 2^64 the power overflows a float; the cap was reached long before.
    ceiling = cap_s if retry >= 64 else min(cap_s, base_s * 2**retry)
    return rng.uniform(0.0, ceiling)


def reschedule_delay_s(retry_after_s: float | None, *, rng: random.Random) -> float:
    """The Gateway's ``retry_after`` (1 s when it gave none), plus a little jitter, never less."""
    wait = DEFAULT_RETRY_AFTER_S if retry_after_s is None else retry_after_s
    return wait + rng.uniform(0.0, min(RESCHEDULE_JITTER_MAX_S, wait * RESCHEDULE_JITTER_SHARE))


def decide(
    outcome: Outcome, attempt: Attempt, policy: Policy, *, rng: random.Random | None = None
) -> Decision:
    """What to do with one attempt's outcome."""
    if outcome.code == OK:
        return Decision(Action.SENT)
    if outcome.code == EXPIRED:
        return Decision.park(ParkReason.EXPIRED)
    rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
    rule = policy.table.rule_for(outcome)
    action = Action(rule.action)
    if action is Action.PARK:
        return Decision(action, reason=rule.park_reason)
    if action is Action.HALT:
        return Decision(action)
    if action is Action.RESCHEDULE:
        if attempt.reschedules >= policy.max_reschedules:
            return Decision(Action.PARK, reason=ParkReason.RETRIES_EXHAUSTED)
        delay = reschedule_delay_s(outcome.retry_after_s, rng=rng)
        return Decision(action, delay_s=delay)
    if attempt.calls >= policy.max_attempts:
        return Decision(Action.PARK, reason=ParkReason.RETRIES_EXHAUSTED)
    delay = backoff_delay_s(
        attempt.calls - 1, base_s=policy.backoff_base_s, cap_s=policy.backoff_cap_s, rng=rng
    )
    return Decision(action, delay_s=delay)
