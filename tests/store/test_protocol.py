"""The scripts' protocol: every Lua file reads exactly the KEYS and ARGV its declaration in
``worker/store/protocol.py`` names, and returns tables as long as the reply declared."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from worker.store.declaration import Script
from worker.store.protocol import (
    BEGIN,
    CLAIMED_FIELDS,
    LIMITS,
    SCRIPTS,
    SENT,
    SETTLEMENT,
    SETTLEMENT_KEYS,
    lua_constants,
)
from worker.store.scripts import script_source
from worker.store.states import SETTLED, JobState

LUA = resources.files("worker.store").joinpath("lua")
LIBRARY = LUA.joinpath("lib")
# Calls that hand a script's whole ARGV to a function of a shared part, and the arguments that
# function reads: so an entry script's count includes what its parts read for it.
HANDED_ON = {"begin": len(BEGIN.argv), "settlement": len(SETTLEMENT)}
# The shared parts that read ARGV themselves (as a function's parameter), and what they read.
PARTS = {"begin": BEGIN.argv, "settle": SETTLEMENT}


def lua(name: str) -> str:
    """``lua/<name>.lua``, or the shared part ``lua/lib/<name>.lua``, without its comments."""
    path = LUA.joinpath(f"{name}.lua")
    if not path.is_file():
        path = LUA.joinpath("lib", f"{name}.lua")
    return re.sub(r"--[^\n]*", "", path.read_text(encoding="utf-8"))


def read(source: str, table: str, script: Script | None = None) -> set[int]:
    """The fixed indices of ``table`` (KEYS or ARGV) a Lua text reads, its parts' included (and
    the KEYS ``named_keys`` reads for them: ``script``'s own, then the next begin's)."""
    found = {int(n) for n in re.findall(rf"\b{table}\[(\d+)\]", source)}
    if table == "KEYS" and script is not None:
        own = len(script.keys)
        if "named_keys(SCRIPT_KEYS, 1)" in source:
            found |= set(range(1, own + 1))
        if "named_keys(BEGIN_KEYS, #SCRIPT_KEYS + 1)" in source:
            found |= set(range(own + 1, own + len(BEGIN.keys) + 1))
    if table == "ARGV":
        for first in re.findall(r"limits_from\(ARGV, (\d+)\)", source):
            found |= set(range(int(first), int(first) + len(LIMITS)))
        for function, count in HANDED_ON.items():
            # its keys come first: begin(named_keys(SCRIPT_KEYS, 1), ARGV, ...)
            if re.search(
                rf"(?<!function ){function}\((?:named_keys\([^)]*\), |k, )?ARGV\b", source
            ):
                found |= set(range(1, count + 1))
    return found


def repeated(source: str) -> tuple[int, int, set[int]] | None:
    """Where a loop over the repeated ARGV starts, its step and the offsets it reads; an
    ``unpack(ARGV, n)`` of pairs or items counts as such a loop."""
    loop = re.search(r"for i = (\d+), #ARGV(?:, (\d+))? do", source)
    if loop:
        offsets = {int(n or 0) for n in re.findall(r"ARGV\[i(?: \+ (\d+))?\]", source)}
        return int(loop.group(1)), int(loop.group(2) or 1), offsets
    unpacked = re.search(r"unpack\(ARGV(?:, (\d+))?\)", source)
    if unpacked:
        return int(unpacked.group(1) or 1), 0, set()
    return None


def returned_tables(source: str) -> list[int]:
    """How many values each ``return {...}`` of a Lua text holds."""
    sizes = []
    for match in re.finditer(r"\breturn \{", source):
        depth, count, i = 1, 1, match.end()
        if source[i] == "}":
            sizes.append(0)
            continue
        while depth:
            char = source[i]
            if char in "({[":
                depth += 1
            elif char in ")}]":
                depth -= 1
            elif char == "," and depth == 1:
                count += 1
            i += 1
        sizes.append(count)
    return sizes


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
def test_each_script_reads_the_keys_its_declaration_names(script: Script):
    """KEYS[1..n] read, n the number declared: no key passed unread, none read undeclared; a
    following script's keys (the next begin's) right after them."""
    declared = len(script.keys) + (len(script.then.keys) if script.then else 0)
    assert read(lua(script.name), "KEYS", script) == set(range(1, declared + 1))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
def test_each_script_reads_the_keys_it_takes_per_item_as_declared(script: Script):
    """Per item, KEYS[k + 1..k + n], n the keys declared per item: k starts after the fixed
    KEYS and steps by n. A script declaring none reads none so."""
    source = lua(script.name)
    offsets = {int(n) for n in re.findall(r"KEYS\[k \+ (\d+)\]", source)}
    assert offsets == set(range(1, len(script.each_key) + 1))
    if script.each_key:
        assert re.search(rf"local k = {len(script.keys)}\b", source)
        assert re.search(rf"\bk = k \+ {len(script.each_key)}\b", source)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
def test_each_script_reads_the_arguments_its_declaration_names(script: Script):
    """ARGV[1..n] read, n the fixed arguments declared; repeated ones in a loop of their step
    starting right after them; a following script's arguments from right after them too."""
    source = lua(script.name)
    fixed = len(script.argv)
    after = {fixed + 1} if script.then else set()
    assert read(source, "ARGV") - after == set(range(1, fixed + 1))
    loop = repeated(source)
    if script.each:
        assert loop is not None, f"{script.name}.lua reads no repeated arguments"
        first, step, offsets = loop
        assert first == fixed + 1
        if step:  # a loop (an unpack takes them all as they come)
            assert step == len(script.each)
            assert offsets == set(range(len(script.each)))
    elif script.then:
        assert f"unpack(ARGV, {fixed + 1})" in source
    else:
        assert loop is None, f"{script.name}.lua reads repeated arguments it does not declare"


@pytest.mark.parametrize("part", sorted(PARTS))
def test_each_shared_part_reads_the_arguments_declared_for_it(part: str):
    """begin.lua and settle.lua read their ARGV (a parameter) as BEGIN and SETTLEMENT say."""
    assert read(lua(part), "ARGV") == set(range(1, len(PARTS[part]) + 1))


@pytest.mark.parametrize(
    "script", [s for s in SCRIPTS if s.reply and not s.each], ids=lambda s: s.name
)
def test_each_reply_is_as_long_as_declared(script: Script):
    """Every table a script returns has the declared reply's values (begin's job fields come
    after them, added by name)."""
    source = lua(script.name) + (lua("begin") if script is BEGIN else "")
    sizes = returned_tables(source)
    assert sizes, f"{script.name}.lua returns no table"
    assert set(sizes) == {len(script.reply)}


def test_begin_reads_only_the_job_fields_it_replies_with():
    """begin.lua reads the job's fields by the generated CLAIMED_FIELDS names, and only those."""
    used = set(re.findall(r"\bfield\.(\w+)", lua("begin")))
    assert used
    assert used <= set(CLAIMED_FIELDS)
    assert "local CLAIMED_FIELDS = {'account', 'key', " in script_source(BEGIN)


# A job's state spelt out in Lua where one is written, compared or chosen, instead of the
# generated JOB_STATE (a verdict or a history event of the same word is not a state).
STATE_WORDS = "|".join(state.value for state in JobState)
SPELT_STATE = re.compile(
    rf"'state'\)?,? ?(?:[=~]= )?'({STATE_WORDS})'"
    rf"|\b(?:state|f\[1\]|job\[1\]) [=~]= '({STATE_WORDS})'"
    rf"| and '({STATE_WORDS})' or '"
)


@pytest.mark.parametrize(
    "name",
    sorted({s.name for s in SCRIPTS} | {p.name.removesuffix(".lua") for p in LIBRARY.iterdir()}),
)
def test_no_script_spells_a_job_state(name):
    """Scripts write, compare and choose a job's state by the generated JOB_STATE, and tell a
    settled one by SETTLED_STATES: the states are named once, in states.py."""
    assert not SPELT_STATE.search(lua(name))


def test_the_generated_states_are_the_python_ones(redis_client):
    """JOB_STATE and SETTLED_STATES, as every script starts with them, hold JobState and
    SETTLED."""
    script = redis_client.register_script(
        lua_constants()
        + "local names, settled = {}, {}\n"
        + "for name, value in pairs(JOB_STATE) do names[#names + 1] = name .. '=' .. value end\n"
        + "for value in pairs(SETTLED_STATES) do settled[#settled + 1] = value end\n"
        + "table.sort(names) table.sort(settled) return {names, settled}"
    )
    names, settled = script(args=[])
    assert names == sorted(f"{state.name}={state.value}" for state in JobState)
    assert settled == sorted(state.value for state in SETTLED)


def test_arguments_missing_or_unknown_are_named():
    """A caller that leaves an argument out, or passes one the script does not take, is told
    which, before anything reaches Redis."""
    script = Script("example", argv=("prefix", "now"), each=("id",))
    with pytest.raises(ValueError, match=r"missing \['now'\], unknown \['when'\]"):
        script.arguments({"prefix": "p:", "when": 1})
    with pytest.raises(ValueError, match=r"missing \['id'\]"):
        script.arguments({"prefix": "p:", "now": 1}, each=[{}])
    assert script.arguments({"now": 1, "prefix": "p:"}, each=[{"id": "a"}, {"id": "b"}]) == [
        "p:",
        1,
        "a",
        "b",
    ]
    keyed = Script("example", keys=("all",), each_key=("job",))
    with pytest.raises(ValueError, match=r"KEYS: missing \['job'\], unknown \['jobs'\]"):
        keyed.key_list({"all": "p:all"}, each=[{"jobs": "p:job:a"}])
    assert keyed.key_list({"all": "p:all"}, each=[{"job": "p:job:a"}]) == ["p:all", "p:job:a"]


def names(folder) -> set[str]:
    return {
        entry.name.removesuffix(".lua") for entry in folder.iterdir() if entry.name.endswith(".lua")
    }


def test_every_script_is_declared_and_every_shared_part_included():
    """Each Lua file in lua/ is an entry script declared in protocol.py, each in lua/lib/ a
    shared part some script includes (the key builders, all of them)."""
    assert names(LUA) == {script.name for script in SCRIPTS}
    included = {part for script in SCRIPTS for part in script.include}
    assert names(LUA.joinpath("lib")) == included | {"keys"}


# Keys read by name: k.<name> from a script's named_keys table (s.k.<name> in settle.lua),
# dk.<name> in delivery.lua's functions.
BY_NAME = re.compile(r"\b(?:k|dk)\.(\w+)")
NAMED = [s for s in SCRIPTS if "named_keys(SCRIPT_KEYS, 1)" in lua(s.name)]


@pytest.mark.parametrize("script", NAMED, ids=lambda s: s.name)
def test_a_script_reads_by_name_only_the_keys_it_declares(script: Script):
    """A name read from the table of a script's keys is one of its declared keys (a name it
    lacks would be nil, and Redis would refuse the command only when that line runs)."""
    assert set(BY_NAME.findall(lua(script.name))) <= set(script.keys)


def test_the_shared_parts_read_by_name_only_keys_their_callers_declare():
    """begin.lua reads BEGIN's keys, settle.lua the settlement's first ones, delivery.lua what
    sent.lua declares and what delivery_keys names for statuses.lua."""
    assert set(BY_NAME.findall(lua("begin"))) <= set(BEGIN.keys)
    assert set(BY_NAME.findall(lua("settle"))) <= set(SETTLEMENT_KEYS)
    delivery = lua("delivery")
    read = set(BY_NAME.findall(delivery))
    assert read <= set(SENT.keys)
    built = delivery[delivery.index("local function delivery_keys") :]
    assert read <= set(re.findall(r"(\w+) = (?:job|keys\.)", built))
    assert NAMED, "no script reads its keys by name"
