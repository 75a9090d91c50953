"""How the pump divides broker room among accounts when it cannot take all they may send.

Pure arithmetic, no Redis: each account asks for what is due and its limiter can take now
(``plan.lua``); when the room is short, each gets a share by its weight (the accounts file's
``weight``), never more than it asked for, and what one does not need goes to the others. The
odd units a division leaves go one each, starting from a turn that moves on every round, so no
account is always last.
"""

from __future__ import annotations

from collections.abc import Mapping


def share_room(
    wanted: Mapping[str, int], weights: Mapping[str, int], room: int, *, turn: int = 0
) -> dict[str, int]:
    """How many jobs each account may dispatch: ``wanted`` when it fits in ``room``, else shares
    of ``room`` by weight (1 for an account without one), none above what it wanted."""
    given = dict.fromkeys(wanted, 0)
    if sum(max(0, w) for w in wanted.values()) <= room:
        return {account: max(0, w) for account, w in wanted.items()}
    left = room
    open_ = sorted(a for a, w in wanted.items() if w > 0)
    while left > 0 and open_:
        total = sum(weights.get(a, 1) for a in open_)
        portions = {a: min(wanted[a] - given[a], left * weights.get(a, 1) // total) for a in open_}
        if not any(portions.values()):
            # Less room than one unit per weight: one each, in turn.
            start = turn % len(open_)
            order = open_[start:] + open_[:start]
            portions = dict.fromkeys(order[:left], 1)
        for account, portion in portions.items():
            given[account] += portion
            left -= portion
        open_ = [a for a in open_ if given[a] < wanted[a]]
    return given
