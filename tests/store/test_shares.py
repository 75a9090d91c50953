"""How the pump divides short broker room among accounts (worker/store/shares.py): pure logic."""

from __future__ import annotations

from worker.store.shares import share_room


def test_what_fits_is_given_whole():
    """With room for everything wanted, each account gets what it wanted."""
    assert share_room({"a": 3, "b": 5}, {"a": 9}, 8) == {"a": 3, "b": 5}


def test_short_room_is_shared_by_weight():
    """Weights 3 and 1 over 40: 30 and 10."""
    assert share_room({"a": 100, "b": 100}, {"a": 3, "b": 1}, 40) == {"a": 30, "b": 10}


def test_an_account_without_a_weight_weighs_one():
    assert share_room({"a": 100, "b": 100}, {}, 10) == {"a": 5, "b": 5}


def test_what_one_account_does_not_need_goes_to_the_others():
    """b wants 2 of its half; a gets the rest, and no room is left unused."""
    assert share_room({"a": 100, "b": 2}, {}, 20) == {"a": 18, "b": 2}


def test_no_account_gets_more_than_it_wanted():
    given = share_room({"a": 7, "b": 50, "c": 1}, {"a": 5, "b": 1, "c": 100}, 30)
    assert given["a"] <= 7
    assert given["c"] == 1
    assert sum(given.values()) == 30


def test_odd_units_go_round_in_turn():
    """One unit for three equal accounts: each round's turn starts with the next one."""
    wanted = {"a": 5, "b": 5, "c": 5}
    winners = [
        next(a for a, n in share_room(wanted, {}, 1, turn=turn).items() if n) for turn in range(3)
    ]
    assert sorted(winners) == ["a", "b", "c"]


def test_a_heavy_account_cannot_starve_a_light_one_forever():
    """Weights 1000 and 1 with room 5 a round: over rounds the light one still gets turns."""
    light = sum(share_room({"a": 100, "b": 100}, {"a": 1000}, 5, turn=t)["b"] for t in range(10))
    assert 0 < light < 10


def test_nothing_wanted_nothing_given():
    assert share_room({"a": 0}, {}, 10) == {"a": 0}
    assert share_room({}, {}, 10) == {}
