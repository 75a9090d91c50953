"""Payload bounds: each limit refuses one past it and accepts it exactly, naming the field."""

from __future__ import annotations

import pytest

from worker.bounds import (
    BODY_MAX_BYTES,
    DEPTH_MAX,
    INTEGER_MAX,
    ITEMS_MAX,
    PROBLEMS_MAX,
    STRING_MAX_CHARS,
    VALUES_MAX,
    body_size_problem,
    shape_problems,
)
from worker.errors import FieldProblem


def nested(depth: int) -> object:
    """A payload whose innermost value is ``depth`` levels down (the payload itself is 1)."""
    payload: object = "leaf"
    for _ in range(depth - 1):
        payload = {"a": payload}
    return payload


def test_a_payload_within_every_bound_has_no_problem():
    payload = {
        "text": {"body": "x" * STRING_MAX_CHARS},
        "count": INTEGER_MAX,
        "ratio": 0.5,
        "items": list(range(ITEMS_MAX)),
        "flag": True,
    }
    assert shape_problems(payload) == []


@pytest.mark.parametrize("depth", [DEPTH_MAX - 1, DEPTH_MAX])
def test_nesting_up_to_the_limit_is_accepted(depth):
    assert shape_problems(nested(depth)) == []


def test_nesting_one_past_the_limit_is_refused_at_the_deepest_container():
    """A container at the limit that still holds something is where the payload is cut."""
    path = ".".join(["a"] * (DEPTH_MAX - 1))
    assert shape_problems(nested(DEPTH_MAX + 1)) == [
        FieldProblem(path, f"nested deeper than {DEPTH_MAX}")
    ]


def test_a_top_level_problem_names_the_message():
    """A problem of the payload itself has no path: it is named ``message``."""
    assert shape_problems(list(range(ITEMS_MAX + 1))) == [
        FieldProblem("message", f"more than {ITEMS_MAX} entries")
    ]
    assert shape_problems(float("nan")) == [
        FieldProblem("message", "must be a finite number (JSON has no NaN or Infinity)")
    ]


@pytest.mark.parametrize(
    ("entries", "problems"),
    [
        (ITEMS_MAX - 1, []),
        (ITEMS_MAX, []),
        (ITEMS_MAX + 1, [FieldProblem("list", f"more than {ITEMS_MAX} entries")]),
    ],
)
def test_an_array_of_more_than_the_entry_limit_is_refused(entries, problems):
    assert shape_problems({"list": [0] * entries}) == problems


@pytest.mark.parametrize(
    ("length", "refused"), [(STRING_MAX_CHARS, False), (STRING_MAX_CHARS + 1, True)]
)
def test_a_string_or_key_over_the_length_limit_is_refused(length, refused):
    text = "x" * length
    too_long = f"longer than {STRING_MAX_CHARS} characters"
    long_key = f"has a key longer than {STRING_MAX_CHARS} characters"
    assert shape_problems({"t": text}) == ([FieldProblem("t", too_long)] if refused else [])
    assert shape_problems({"b": text.encode()}) == (
        [FieldProblem("b", too_long)] if refused else []
    )
    assert shape_problems({"o": {text: 1}}) == ([FieldProblem("o", long_key)] if refused else [])


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_a_number_json_cannot_hold_is_refused(number):
    assert shape_problems({"n": number}) == [
        FieldProblem("n", "must be a finite number (JSON has no NaN or Infinity)")
    ]


@pytest.mark.parametrize(
    ("number", "refused"),
    [
        (INTEGER_MAX, False),
        (-INTEGER_MAX, False),
        (INTEGER_MAX + 1, True),
        (-INTEGER_MAX - 1, True),
    ],
)
def test_an_integer_beyond_what_every_json_parser_reads_exactly_is_refused(number, refused):
    problem = FieldProblem("n", f"must be a number within ±{INTEGER_MAX}")
    assert shape_problems({"n": number}) == ([problem] if refused else [])


def test_booleans_are_not_numbers_out_of_range():
    assert shape_problems({"yes": True, "no": False}) == []


def test_problems_name_their_dotted_path_with_array_indexes():
    payload = {"a": [{"b": "ok"}, {"b": "x" * (STRING_MAX_CHARS + 1)}]}
    assert shape_problems(payload) == [
        FieldProblem("a.1.b", f"longer than {STRING_MAX_CHARS} characters")
    ]


def test_every_problem_is_found_not_only_the_first():
    """The walk goes on past a problem (up to the cap): each bad field is named."""
    bad = float("inf")
    payload = {"first": bad, "second": {"deep": bad}, "third": [bad]}
    assert {p.field for p in shape_problems(payload)} == {"first", "second.deep", "third.0"}


def test_an_empty_container_is_a_value_like_any_other():
    """Empty objects and arrays, and plain values, are accepted, and the walk goes on after
    them (to a bad value it meets later)."""
    payload = {"bad": float("nan"), "object": {}, "array": [], "text": "ok", "number": 1}
    assert [p.field for p in shape_problems(payload)] == ["bad"]


def test_a_hostile_payload_gets_at_most_a_few_problems():
    payload = [float("nan")] * ITEMS_MAX
    assert len(shape_problems(payload)) == PROBLEMS_MAX


@pytest.mark.parametrize(("values", "refused"), [(VALUES_MAX, False), (VALUES_MAX + 1, True)])
def test_more_values_than_the_limit_in_the_whole_payload_is_refused(values, refused):
    """The payload itself counts as one value, each container and each leaf as one more."""
    per_list = ITEMS_MAX
    lists, rest = divmod(values - 1, per_list + 1)
    payload = {f"l{i}": [0] * per_list for i in range(lists)}
    if rest:
        payload["rest"] = [0] * (rest - 1)
    problems = shape_problems(payload)
    if refused:
        assert len(problems) == 1
        assert problems[0].message == f"more than {VALUES_MAX} values"
        assert problems[0].field.startswith("l")  # the value at which the count ran over
    else:
        assert problems == []


def body_of_size(size: int) -> dict[str, str]:
    """A body whose compact UTF-8 JSON is exactly ``size`` bytes."""
    overhead = len('{"t":""}')
    return {"t": "x" * (size - overhead)}


@pytest.mark.parametrize(("size", "refused"), [(BODY_MAX_BYTES, False), (BODY_MAX_BYTES + 1, True)])
def test_a_body_over_the_byte_limit_is_refused_naming_its_size(size, refused):
    problem = body_size_problem(body_of_size(size))
    if refused:
        assert problem == FieldProblem(
            "message", f"is {size} bytes as JSON, more than {BODY_MAX_BYTES}"
        )
    else:
        assert problem is None


def test_a_body_is_measured_in_utf8_bytes_not_characters():
    """Two-byte characters count twice: the limit is on the bytes posted."""
    half = BODY_MAX_BYTES // 2
    assert body_size_problem({"t": "é" * half}) is not None
    assert body_size_problem({"t": "e" * half}) is None
