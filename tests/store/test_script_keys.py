"""Scripts take their keys as KEYS, built in Python (``worker/store/keys.py``), and build no key
name from a prefix: what Redis Cluster needs to route a script to the slot of its keys. The
scripts and shared parts not converted yet are listed, each with its reason; the list can only
shrink (a listed file that no longer needs it fails too)."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from worker.store.protocol import SCRIPTS

LUA = resources.files("worker.store").joinpath("lua")

# Lua files (under lua/) that still build key names from a prefix, and why.
STILL_PREFIXED = {
    "lib/keys.lua": "the key builders the files below still use",
    "lib/ratelimit.lua": "rate_keys: the limiter's keys named from the prefix, for the pump",
    "lib/delivery.lua": "delivery_keys: a receipt finds its job by its wamid as statuses.lua runs",
    "resume.lua": "held jobs' keys are known once popped, and it lifts the halt in the same step",
    "plan.lua": "the pump's scripts: not converted yet",
    "promote.lua": "the pump's scripts: not converted yet",
    "statuses.lua": "receipts: the jobs are found by wamid at run time (docs/architecture.md)",
}

PREFIX = re.compile(r"\bprefix\b")
FUNCTION = re.compile(r"^(?:local )?function ([\w.]+)\(", re.MULTILINE)


def source(name: str) -> str:
    """``lua/<name>``, without its comments."""
    return re.sub(r"--[^\n]*", "", LUA.joinpath(name).read_text(encoding="utf-8"))


def lua_files() -> list[str]:
    lib = [f"lib/{e.name}" for e in LUA.joinpath("lib").iterdir() if e.name.endswith(".lua")]
    return sorted([f"{script.name}.lua" for script in SCRIPTS] + lib)


def prefixed_functions() -> set[str]:
    """The shared parts' functions that name keys from a prefix: each definition's text, up to
    the next one, mentions it (a parameter, or read from the ARGV it is handed)."""
    found = set()
    for name in lua_files():
        if name.startswith("lib/"):
            text = source(name)
            starts = list(FUNCTION.finditer(text))
            for here, after in zip(starts, [*starts[1:], None], strict=True):
                body = text[here.start() : after.start() if after else len(text)]
                if PREFIX.search(body):
                    found.add(here.group(1))
    return found


def builds_from_prefix(name: str) -> bool:
    """Whether a Lua file names keys from a prefix, itself or through a shared function."""
    text = source(name)
    if PREFIX.search(text):
        return True
    calls = set(re.findall(r"(?<![\w.])([\w.]+)\(", FUNCTION.sub("", text)))
    return bool(calls & prefixed_functions())


@pytest.mark.parametrize("name", lua_files())
def test_no_script_builds_a_key_name_from_a_prefix_unless_still_listed(name: str):
    """A converted file (not listed) names no key from a prefix; a listed one still does, so
    the list is dropped from as files are converted."""
    assert builds_from_prefix(name) == (name in STILL_PREFIXED), STILL_PREFIXED.get(
        name, f"{name} builds a key name from a prefix: take the key as KEYS instead"
    )


def test_every_listed_file_exists():
    assert set(STILL_PREFIXED) <= set(lua_files())


@pytest.mark.parametrize(
    "script", [s for s in SCRIPTS if f"{s.name}.lua" not in STILL_PREFIXED], ids=lambda s: s.name
)
def test_a_converted_script_is_given_no_prefix(script):
    """Its declaration takes no prefix among its arguments: every key it touches is in KEYS."""
    assert "prefix" not in script.argv
