"""Debian's headless Chromium driven by Playwright (its own browser download is never used)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import playwright.sync_api as playwright  # the dev extra: never skipped in CI

# Debian's chromium, wherever PATH has it (./run test installs it and looks it up the same way).
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@contextmanager
def chromium_page(width: int = 1280, height: int = 800) -> Iterator[playwright.Page]:
    """A fresh page in a fresh browser, closed afterwards."""
    assert CHROMIUM.exists(), "Debian's chromium is not installed (apt-get install chromium)"
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = chromium.new_context(viewport={"width": width, "height": height})
        try:
            yield context.new_page()
        finally:
            context.close()
            chromium.close()
