"""Prometheus multiprocess mode needs its directory set and emptied before anything counts.

Kept apart from ``worker.observe.metrics`` on purpose: importing prometheus_client before the
directory is chosen would give every pool process its own, invisible, counters.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_directory() -> Path:
    """Use $PROMETHEUS_MULTIPROC_DIR (emptied) or a new temporary directory; returns it."""
    chosen = os.environ.get(MULTIPROC_ENV)
    directory = Path(chosen) if chosen else Path(tempfile.mkdtemp(prefix="msgworker-metrics-"))
    if directory.exists():
        # Counts left by an earlier run would be added to this one's.
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory
