"""How one Lua entry script is declared (``Script``): its KEYS, its ARGV and its reply, by name;
calls are built from the declaration and replies read by it, never by position kept by hand.
The declarations themselves are in ``protocol.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Script:
    """One Lua entry script, ``lua/<name>.lua``, after the shared parts it ``include``s from
    ``lua/lib/`` (in that order, after ``lib/keys.lua``).

    ``keys`` are its fixed KEYS, ``each_key`` the keys it takes once per item after them (a
    job's); ``argv`` its fixed arguments; ``each`` the arguments it takes once per item after
    them (a job, a status); ``then``, another script whose ARGV may follow (the next begin after
    a send). ``reply`` names the values its reply starts with.
    """

    name: str
    keys: tuple[str, ...] = ()
    each_key: tuple[str, ...] = ()
    argv: tuple[str, ...] = ()
    each: tuple[str, ...] = ()
    then: Script | None = None
    reply: tuple[str, ...] = ()
    include: tuple[str, ...] = ()

    def key_list(
        self, keys: Mapping[str, str], *, each: Iterable[Mapping[str, str]] = ()
    ) -> list[str]:
        """KEYS in the declared order, from the key names given by name, then each item's."""
        where = f"{self.name}.lua KEYS"
        names = [keys[name] for name in _exactly(self.keys, keys, where)]
        for item in each:
            names += [item[name] for name in _exactly(self.each_key, item, where)]
        return names

    def keys_of(self, named: Mapping[str, str], *, then: Sequence[str] = ()) -> list[str]:
        """KEYS in the declared order, picked by name from ``named`` (which may name more),
        then ``then`` (the following script's KEYS)."""
        if then and self.then is None:
            raise ValueError(f"{self.name}.lua KEYS: takes no further script's keys")
        return [*(named[name] for name in self.keys), *then]

    def arguments(
        self,
        values: Mapping[str, Any],
        *,
        each: Iterable[Mapping[str, Any]] = (),
        then: Sequence[Any] = (),
    ) -> list[Any]:
        """ARGV in the declared order: ``values`` by name, then each item's, then ``then``
        (the following script's ARGV, built by its own declaration)."""
        where = f"{self.name}.lua ARGV"
        argv = [values[name] for name in _exactly(self.argv, values, where)]
        for item in each:
            argv += [item[name] for name in _exactly(self.each, item, where)]
        if then and self.then is None:
            raise ValueError(f"{where}: takes no further script's arguments")
        return [*argv, *then]

    def fields(self, reply: Sequence[Any]) -> dict[str, str]:
        """The reply's leading values by their declared names, as text."""
        return {name: text(value) for name, value in zip(self.reply, reply, strict=False)}


def _exactly(names: tuple[str, ...], given: Mapping[str, Any], where: str) -> tuple[str, ...]:
    if set(given) != set(names):
        missing = sorted(set(names) - set(given))
        unknown = sorted(set(given) - set(names))
        raise ValueError(f"{where}: missing {missing}, unknown {unknown}")
    return names


def text(value: Any) -> str:
    """One value of a script's reply as text (a client without decode_responses gives bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)
