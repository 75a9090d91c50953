"""A settings test's environment: nothing from the machine leaks in."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No MSGWORKER_ variable or .env file from the machine leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("MSGWORKER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
