"""The README is a front page and docs/ the manual: every page reachable from the README, and
every link between them lands on a file and a heading that exist."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.support.docs import DOCS, README, ROOT, anchors, github_anchor, links, pages

# A front page read in ten minutes; the manual lives in docs/.
README_MAX_LINES = 300
EXTERNAL = ("http://", "https://", "mailto:")


def relative_links(page: Path) -> list[str]:
    return [target for target in links(page) if not target.startswith(EXTERNAL)]


def test_github_anchor_matches_githubs_rule():
    """The anchor helper gives the fragments GitHub renders for headings."""
    assert github_anchor("Balance ran out (BILL_001)") == "balance-ran-out-bill_001"
    assert github_anchor("Rate limited (429)") == "rate-limited-429"
    assert github_anchor("The Gateway is failing") == "the-gateway-is-failing"
    assert github_anchor("1. The image") == "1-the-image"
    assert github_anchor("Behind a proxy: `MSGWORKER_X`") == "behind-a-proxy-msgworker_x"


def test_the_readme_is_a_front_page():
    """README.md stays short enough to read in ten minutes."""
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move sections to docs/"


def test_every_docs_page_is_linked_from_the_readme():
    """Each page in docs/ is reachable from README.md's own links."""
    linked = {(ROOT / unquote(target.split("#")[0])).resolve() for target in relative_links(README)}
    unlinked = [page.name for page in sorted(DOCS.glob("*.md")) if page.resolve() not in linked]
    assert not unlinked, f"docs pages README.md does not link: {unlinked}"


@pytest.mark.parametrize("page", pages(), ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_lands(page):
    """Each relative link names a file that exists and, with #anchor, a heading of that page."""
    broken = []
    for target in relative_links(page):
        path, _, anchor = unquote(target).partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, broken
