"""Every test has exactly one tier, given by what it uses (tests/support/tiers.py)."""

from __future__ import annotations

import pytest

from tests.support.tiers import TIERS, overstep, program, tier_of


def test_every_collected_test_has_exactly_one_tier(request):
    """No test is left without a tier, or given two: `-m unit` is then exactly the fast tier."""
    for item in request.session.items:
        tiers = {mark.name for mark in item.iter_markers() if mark.name in TIERS}
        assert len(tiers) == 1, f"{item.nodeid}: tiers {sorted(tiers)}"


@pytest.mark.parametrize(
    ("markers", "fixtures", "tier"),
    [
        ((), ("tmp_path", "monkeypatch"), "unit"),
        ((), ("sandbox",), "unit"),
        ((), ("redis_url", "redis_server"), "redis"),
        ((), ("own_redis",), "redis"),
        (("e2e",), ("redis_server",), "processes"),
        (("chaos", "parametrize"), (), "processes"),
        (("alerting",), (), "processes"),
        ((), ("workers", "redis_server"), "processes"),
        (("redis",), (), "redis"),
        (("processes",), ("redis_server",), "processes"),
        (("unit",), ("redis_server",), "redis"),
    ],
)
def test_a_tier_follows_from_the_fixtures_and_markers(markers, fixtures, tier):
    """Fixtures set the floor; a redis or processes marker raises it, a unit marker cannot lower it."""
    assert tier_of(markers, fixtures) == tier


@pytest.mark.parametrize(
    ("event", "args", "name"),
    [
        (
            "subprocess.Popen",
            ("/venv/bin/msgworker", ["/venv/bin/msgworker", "status"], None, None),
            "msgworker",
        ),
        ("subprocess.Popen", (None, "promtool check rules x.yml", None, None), "promtool"),
        (
            "subprocess.Popen",
            (b"/usr/bin/redis-server", [b"/usr/bin/redis-server"], None, None),
            "redis-server",
        ),
        ("os.posix_spawn", ("/bin/celery", ["celery", "worker"], {}), "celery"),
        ("os.spawn", (0, "/bin/true", ["true"], {}), "true"),
        ("os.system", ("amtool check-config a.yml",), "amtool"),
        ("os.fork", (), "fork"),
    ],
)
def test_the_program_a_spawn_starts_is_named(event, args, name):
    """Each audit event of starting a program names that program."""
    assert program(event, args) == name


def test_a_tier_allows_only_its_own_programs():
    """unit starts nothing; redis only redis-server; processes anything."""
    assert overstep("unit", ["redis-server"]) == ["redis-server"]
    assert overstep("redis", ["redis-server", "msgworker", "msgworker"]) == ["msgworker"]
    assert overstep("redis", ["redis-server"]) == []
    assert overstep("processes", ["celery", "fork"]) == []
