"""Every variable name the README and docs/ tell people to set can be exported without msgworker
refusing to start: an unknown ``MSGWORKER_*`` name stops every command, so a recipe's own
variables must live outside that prefix."""

from __future__ import annotations

import re

import pytest

from tests.support.docs import DOCS, pages
from worker.settings import get_settings, unknown_variable

# Named in docs/configuration.md as the example of a typo that is refused.
REFUSED_ON_PURPOSE = {"MSGWORKER_RATE_PER_SECOND"}


def documented_names() -> set[str]:
    names = set()
    for page in pages():
        names |= set(re.findall(r"\bMSGWORKER_[A-Z0-9_]*[A-Z0-9]\b", page.read_text("utf-8")))
    return names


def test_the_pages_name_variables_at_all():
    """The search finds the settings the pages document (so the test below has teeth)."""
    assert {"MSGWORKER_BROKER_URL", "MSGWORKER_INGEST_TOKENS"} <= documented_names()


@pytest.mark.parametrize("name", sorted(documented_names() - REFUSED_ON_PURPOSE))
def test_every_documented_variable_is_accepted(name):
    """A name the documentation mentions is a setting msgworker knows."""
    assert unknown_variable([name]) is None


def test_the_typo_example_is_still_refused():
    """The documented example of a refused typo is refused, naming the setting meant."""
    [typo] = REFUSED_ON_PURPOSE
    assert "MSGWORKER_RATE_PER_SEC" in (unknown_variable([typo]) or "")


def recipe_variables() -> set[str]:
    """The environment variables the recipes read ($NAME, ${NAME}, process.env.NAME)."""
    text = (DOCS / "sending.md").read_text("utf-8")
    blocks = re.findall(r"<!-- recipe: [\w-]+ -->\n```\w+\n(.*?)```", text, re.DOTALL)
    pattern = r"\$\{?([A-Z][A-Z0-9_]*)|process\.env\.([A-Z][A-Z0-9_]*)"
    return {a or b for block in blocks for a, b in re.findall(pattern, block)}


def test_the_recipes_variables_do_not_stop_msgworker(monkeypatch):
    """The variables the HTTP recipes read can be exported beside msgworker's own settings."""
    names = recipe_variables()
    assert names, "the recipes read their address and token from the environment"
    for name in names:
        monkeypatch.setenv(name, "http://127.0.0.1:8080")
    assert get_settings(_env_file=None).serve_port > 0
