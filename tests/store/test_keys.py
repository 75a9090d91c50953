"""Key names: built in one place, parts encoded, the scripts' builders equal to Python's."""

from __future__ import annotations

import inspect
import re
from importlib import resources

import pytest

from worker.store.keys import Keys, decode_part, encode_part, lane_of

PARTS = ["default", "a:b", "b:c", "%3A", "x{tag}y", "100%", "ünï:cödé", "", "a|1", "j1:history"]


def builders() -> dict[str, int]:
    """Every key builder of ``Keys`` and how many parts it takes (0 for a property)."""
    found = {}
    for name, member in inspect.getmembers(Keys):
        # xǁKeysǁ…: the copies of a method that mutmut adds to the class in a mutation run.
        if name.startswith(("_", "xǁ")) or name == "account_of":
            continue
        if isinstance(member, property):
            found[name] = 0
        elif inspect.isfunction(member):
            found[name] = len(inspect.signature(member).parameters) - 1
    return found


def lua_sources() -> dict[str, str]:
    """Every Lua file by its name: the entry scripts and their shared parts (in lib/)."""
    folder = resources.files("worker.store").joinpath("lua")
    files = [*folder.iterdir(), *folder.joinpath("lib").iterdir()]
    return {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in files
        if entry.name.endswith(".lua")
    }


@pytest.mark.parametrize("part", PARTS)
def test_encoded_parts_decode_to_themselves_and_hold_no_separator(part):
    """A part's encoding has no ':' or braces, and decodes back."""
    encoded = encode_part(part)
    assert not set(encoded) & set(":{}")
    assert decode_part(encoded) == part


def test_account_and_key_cannot_run_into_each_other():
    """Account ``a`` with key ``b:c`` and account ``a:b`` with key ``c`` name different keys."""
    keys = Keys()
    for build in (keys.idempotency, keys.ledger, keys.claim):
        assert build("a", "b:c") != build("a:b", "c")
    assert keys.breaker_probe("a") != keys.breaker("a:probe")
    assert keys.history("j") != keys.job("j:history")


def test_every_python_builder_has_a_lua_twin_and_no_other(redis_client):
    """keys.lua defines exactly the builders ``Keys`` has."""
    script = redis_client.register_script(
        lua_sources()["keys.lua"]
        + "\nlocal names = {}\nfor name in pairs(keys) do names[#names + 1] = name end\n"
        "table.sort(names)\nreturn names"
    )
    assert script(args=[]) == sorted(builders())


@pytest.mark.parametrize("prefix", ["msgworker:", "t:{x}:"])
def test_lua_builders_produce_the_same_names_as_python(redis_client, prefix):
    """For awkward parts, every key name a script builds equals the Python builder's."""
    script = redis_client.register_script(
        lua_sources()["keys.lua"] + "\nreturn keys[ARGV[1]](ARGV[2], unpack(ARGV, 3))"
    )
    keys = Keys(prefix)
    for name, arity in builders().items():
        member = getattr(keys, name)
        samples = [()] if arity == 0 else [tuple([p] * arity) for p in PARTS]
        samples += [("halt", "a:b"), ("a:b", "sec")] if arity == 2 else []
        if name == "answers_in_second":
            samples = [(1_700_000_000,)]
        for args in samples:
            expected = member if arity == 0 else member(*args)
            assert script(args=[name, prefix, *args]) == expected, (name, args)


def test_no_script_builds_a_key_name_by_hand():
    """Only keys.lua joins the prefix and key parts; the other scripts call its builders."""
    joined = re.compile(r"prefix\s*\.\.|\.\.\s*'[a-z_]+:'|'(job|idem|sent|claim|halt|dlq|rate):")
    for name, source in lua_sources().items():
        if name == "keys.lua":
            continue
        assert not joined.search(source), name


def test_account_of_reads_back_an_encoded_account():
    """Keys that name an account give it back decoded; sub-keys (a breaker's probe) give None."""
    keys = Keys()
    assert keys.account_of("halt", keys.halt("a:b")) == "a:b"
    assert keys.account_of("breaker", keys.breaker_probe("a")) is None
    assert keys.account_of("held", keys.halt("a")) is None


@pytest.mark.parametrize(
    ("priority", "lane"),
    [
        ("high", "high"),
        ("bulk", "bulk"),
        ("normal", "normal"),
        (None, "normal"),
        ("urgent", "normal"),
    ],
)
def test_a_job_waits_in_its_prioritys_lane_and_normal_by_default(priority, lane):
    assert lane_of(priority) == lane
