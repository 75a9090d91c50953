"""The repository's Markdown pages as GitHub renders them: their headings' anchors and links."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
RUNBOOKS = DOCS / "runbooks.md"
# Every runbook_url (the Prometheus rules' and the workers' own alerts'): a section of the
# runbooks page, relative to the repository's root.
RUNBOOK_PREFIX = "docs/runbooks.md#"

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$")
# [text](target) and ![alt](target); a target ends at the first space (a title may follow).
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)")
INLINE_CODE = re.compile(r"`[^`]*`")


def pages() -> list[Path]:
    """The README and every page under docs/."""
    return [README, *sorted(DOCS.glob("*.md"))]


def prose(page: Path) -> list[str]:
    """The page's lines outside fenced code blocks (where # and [..](..) are not Markdown)."""
    lines, fenced = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a Markdown heading: lower case, punctuation dropped, - for spaces."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's fragment in the page; a repeated heading gets -1, -2... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose(page):
        if heading := HEADING.match(line):
            slug = github_anchor(heading.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(f"{slug}-{count}" if count else slug)
    return found


def links(page: Path) -> list[str]:
    """The targets of the page's links and images, outside code."""
    return [target for line in prose(page) for target in LINK.findall(INLINE_CODE.sub("", line))]
