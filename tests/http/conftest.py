"""The console's browser tests: a real headless Chromium (Debian's, driven by Playwright), and
where their screenshots go."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.browser import chromium_page


@pytest.fixture
def shots(tmp_path):
    """Where screenshots go: the tmp dir, or CONSOLE_SCREENSHOTS (docs/screenshots)."""
    folder = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser():
    """A page in a fresh headless Chromium context, 1280 by 800."""
    with chromium_page() as page:
        yield page
