"""The runbooks, served by the console itself (nothing fetched from elsewhere): each incident's
next step links its section here.

The text is docs/runbooks.md, which the wheel carries beside this module. Markdown is read only
as far as the runbooks use it: ``##`` sections (anchored as GitHub anchors them, the alerts'
``runbook_url`` anchors), fenced commands, and paragraphs; a link shows its words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")


@dataclass(frozen=True)
class Block:
    kind: str  # "p" or "pre"
    text: str


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        """The anchor GitHub gives this heading (``Balance ran out (BILL_001)`` →
        ``balance-ran-out-bill_001``)."""
        return re.sub(r"[^\w\- ]", "", self.title.lower()).replace(" ", "-")


def runbooks_path() -> Path:
    """The copy shipped in the wheel, else the checkout's docs/runbooks.md."""
    packaged = HERE / "runbooks.md"
    return packaged if packaged.exists() else HERE.parents[2] / "docs" / "runbooks.md"


def parse_runbooks(text: str) -> list[Section]:
    """The ``##`` sections of the runbooks, each its paragraphs and fenced blocks."""
    sections: list[Section] = []
    lines: list[str] = []
    fenced = False

    def flush(kind: str) -> None:
        if sections and lines:
            joined = "\n".join(lines) if kind == "pre" else LINK.sub(r"\1", " ".join(lines))
            sections[-1].blocks.append(Block(kind, joined))
        lines.clear()

    for line in text.splitlines():
        if line.startswith("```"):
            flush("pre" if fenced else "p")
            fenced = not fenced
        elif fenced:
            lines.append(line)
        elif line.startswith("## "):
            flush("p")
            sections.append(Section(line[3:].strip()))
        elif not line.strip():
            flush("p")
        else:
            lines.append(line.strip())
    flush("p")
    return sections


SECTIONS = parse_runbooks(runbooks_path().read_text(encoding="utf-8"))
