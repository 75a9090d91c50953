"""What every generator script in deploy/ does with its output: write it, or check the copy.

    main(argv)  →  write_or_check(OUTPUT, render(), argv, generator=__file__)

Without arguments the file is rewritten; with ``--check`` nothing is written and the exit code
says whether the committed file is still exactly the generator's output (CI runs the checks).
The scripts are run by path, so each puts this folder on ``sys.path`` before importing this.
"""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(output: Path, text: str, argv: list[str], *, generator: str) -> int:
    """Write ``text`` to ``output``; with ``--check``, 1 (and a line on stderr) when it differs."""
    if argv == ["--check"]:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            sys.stderr.write(f"{output} is not what {generator} generates: run it\n")
            return 1
        return 0
    output.write_text(text, encoding="utf-8")
    return 0
