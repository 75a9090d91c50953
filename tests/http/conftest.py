"""The console's browser tests: a real headless Chromium (Debian's, driven by Playwright), and
where their screenshots go."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import playwright.sync_api as playwright  # the dev extra: never skipped in CI
import pytest

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


@pytest.fixture
def shots(tmp_path):
    """Where screenshots go: the tmp dir, or CONSOLE_SCREENSHOTS (docs/screenshots)."""
    folder = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser():
    """A page in a fresh headless Chromium context, 1280 by 800."""
    assert CHROMIUM.exists(), "Debian's chromium is not installed (apt-get install chromium)"
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = chromium.new_context(viewport={"width": 1280, "height": 800})
        yield context.new_page()
        context.close()
        chromium.close()
