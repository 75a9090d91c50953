"""The cluster-wide rate limiter's settings; its logic is Lua (``lua/lib/ratelimit.lua``).

Every call of every worker reserves a slot in the account's two sliding windows as part of
claiming its job (``lib/begin.lua``): slots are handed out in time order where both windows and
any RATE_001 cooldown allow them, so the account's limit is used fully, workers queue fairly, and
nobody polls Redis while waiting. As the job is settled (``lib/settle.lua``) its call's entry
moves to where the call reached the Gateway, and the answer's ``X-RateLimit-*`` headers are
learnt from: an announced limit is followed up to the ceiling, and a window the Gateway says is
fuller than ours is filled to match (never past the limit in force).

Pair pacing (``lua/lib/pairs.lua``, reserved by the same begin): per account and recipient, at
most ``pair_burst`` calls the Gateway accepted within any ``pair_interval_s``, measured between
its answers; a call begun counts until its answer, and only an accepted one counts after it. A
job whose pair is not free goes back on the schedule until it is, taking no slot of the
account's: the other recipients' jobs go out meanwhile.

Limits: a configured ``RATE_PER_SEC`` / ``RATE_PER_MIN`` is a ceiling (the lower of it and the
Gateway's announcement is used); unset, the limiter starts from the documented 80 / 4,800 and
follows the announcements up to ``SEC_LIMIT_MAX`` / ``MIN_LIMIT_MAX``. An announced limit
outside 1..max is garbage and never stored (see ``worker.send.answers``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from worker.bounds import MIN_LIMIT_MAX, SEC_LIMIT_MAX
from worker.outcome import RateLimitHeaders

# The Gateway's sliding second, which counts arrivals. The limiter's is longer by a margin: each
# settlement moves its call's entry to where the call reached the Gateway (``arrived`` in
# ratelimit.lua), and the margin covers what that cannot (``worker.send.arrivals`` keeps it per
# worker process). Each millisecond of margin costs 0.1 % of the limit, and each 429 about a
# second of the account's sending (its cooldown). Until a worker has measured its calls, and for
# a begin that names none, the margin is the start one: a fixed 40 ms was all the limiter had
# before it placed calls where they arrived (1 answer 429 in a minute at 80/s, a cap of 96.2 %;
# with 20 ms, 5, bench/isolation.py).
GATEWAY_SEC_WINDOW_MS = 1000
SEC_MARGIN_START_MS = 40
# The limiter's second with the start margin: a begin's that names no margin of its worker's, and
# the one learn compares the Gateway's count with the log over (wider than a measured margin: a
# late call does not read as a call of another client).
SEC_WINDOW_MS = GATEWAY_SEC_WINDOW_MS + SEC_MARGIN_START_MS
MIN_WINDOW_MS = 60_300
# The Gateway's documented limits: where an unconfigured limiter starts.
DEFAULT_PER_SEC = 80
DEFAULT_PER_MIN = 4800


@dataclass(frozen=True)
class RateLimit:
    """Where the limits start, their ceilings, and the longest in-worker wait.

    Built with ``per_sec``/``per_min`` only, the limiter starts there and follows what the
    Gateway announces up to the sane maximum; ``configured`` makes those values ceilings.
    """

    per_sec: int = DEFAULT_PER_SEC
    per_min: int = DEFAULT_PER_MIN
    max_wait_s: float = 1.0
    sec_ceiling: int = SEC_LIMIT_MAX
    min_ceiling: int = MIN_LIMIT_MAX
    # Accounts with limits of their own (an accounts file); every other account uses these.
    accounts: Mapping[str, RateLimit] = field(default_factory=dict, compare=False)
    # Pair pacing, the same for every account (0 s: off, as a limiter built without settings).
    pair_interval_s: float = 0.0
    pair_burst: int = 1

    @classmethod
    def configured(
        cls,
        per_sec: int | None,
        per_min: int | None,
        *,
        max_wait_s: float = 1.0,
        pair_interval_s: float = 0.0,
        pair_burst: int = 1,
    ) -> RateLimit:
        """A limiter from the settings: each limit set is a ceiling, each unset one follows."""
        return cls(
            per_sec=per_sec or DEFAULT_PER_SEC,
            per_min=per_min or DEFAULT_PER_MIN,
            max_wait_s=max_wait_s,
            sec_ceiling=per_sec or SEC_LIMIT_MAX,
            min_ceiling=per_min or MIN_LIMIT_MAX,
            pair_interval_s=pair_interval_s,
            pair_burst=pair_burst,
        )

    def with_accounts(self, limits: Mapping[str, tuple[int | None, int | None]]) -> RateLimit:
        """This limiter, with each account's (per_sec, per_min) ceilings where they differ."""
        own = {
            name: RateLimit.configured(sec, per_min, max_wait_s=self.max_wait_s)
            for name, (sec, per_min) in limits.items()
        }
        mine = self.limit_arguments()
        return replace(self, accounts={n: r for n, r in own.items() if r.limit_arguments() != mine})

    def for_account(self, account: str) -> RateLimit:
        """The limits of one account."""
        return self.accounts.get(account, self)

    def limit_arguments(self) -> list[int]:
        """The limits of an account of its own, as the scripts take them: sec, min and their
        ceilings."""
        return [self.per_sec, self.per_min, self.sec_ceiling, self.min_ceiling]

    def limits(self, sec_margin_ms: int = SEC_MARGIN_START_MS) -> dict[str, int | str]:
        """The limits begin and the pump's scripts take (``protocol.LIMITS``), by name, with the
        Gateway's second stretched by ``sec_margin_ms``."""
        own = {name: rate.limit_arguments() for name, rate in self.accounts.items()}
        return {
            "sec_limit": self.per_sec,
            "min_limit": self.per_min,
            "sec_window_ms": GATEWAY_SEC_WINDOW_MS + sec_margin_ms,
            "min_window_ms": MIN_WINDOW_MS,
            "max_wait_ms": int(self.max_wait_s * 1000),
            "sec_ceiling": self.sec_ceiling,
            "min_ceiling": self.min_ceiling,
            "own_limits": json.dumps(own) if own else "",
        }

    def pair_arguments(self) -> dict[str, int]:
        """The pair pacing a begin takes (``protocol.PAIRS``), by name."""
        return {
            "pair_interval_ms": round(self.pair_interval_s * 1000),
            "pair_burst": self.pair_burst,
        }

    def limits_in_force(self, learned_sec: int | None, learned_min: int | None) -> tuple[int, int]:
        """The (sec, min) limits calls are paced by, as ``ratelimit.lua`` reckons them: what the
        Gateway announced (a value below 1 is none), else the start values, under the ceilings."""
        sec = learned_sec if learned_sec is not None and learned_sec >= 1 else self.per_sec
        per_min = learned_min if learned_min is not None and learned_min >= 1 else self.per_min
        return min(sec, self.sec_ceiling), min(per_min, self.min_ceiling)

    def in_force(self, headers: RateLimitHeaders) -> RateLimitHeaders:
        """The headers as this limiter learns from them: announced limits under the ceilings.

        Stored this way, a window is never filled past the limit in force, and an answer whose
        limit in force differs from the stored one rewrites it (a raised ceiling takes effect at
        the next answer).
        """
        return replace(
            headers,
            sec_limit=_under(headers.sec_limit, self.sec_ceiling),
            min_limit=_under(headers.min_limit, self.min_ceiling),
        )


def _under(limit: int | None, ceiling: int) -> int | None:
    return None if limit is None else min(limit, ceiling)


def learn_arguments(headers: RateLimitHeaders) -> dict[str, int | str]:
    """What a settlement learns from one answer's headers (``protocol.HEADERS``, '' where
    absent)."""
    values = {
        "sec_limit": headers.sec_limit,
        "sec_remaining": headers.sec_remaining,
        "min_limit": headers.min_limit,
        "min_remaining": headers.min_remaining,
    }
    return {
        "sec_window_ms": SEC_WINDOW_MS,
        "min_window_ms": MIN_WINDOW_MS,
        **{name: "" if value is None else value for name, value in values.items()},
    }
