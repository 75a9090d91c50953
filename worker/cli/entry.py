"""The installed ``msgworker`` command: the CLI, or, in a producer-only install, a one-line
note on what to install for it (exit 2), never a traceback.

``pip install msgworker`` is the producer API alone; the command's operations need the worker
extra (Celery, the metrics, the terminal tables) and ``msgworker serve`` the serve extra.
"""

from __future__ import annotations

import sys

from worker.cli.exits import EXIT_USAGE

# The top-level modules each extra brings (pyproject.toml's optional dependencies).
EXTRAS = {
    "worker": frozenset({"celery", "kombu", "billiard", "prometheus_client", "aiohttp", "rich"}),
    "serve": frozenset({"fastapi", "starlette", "uvicorn", "httptools", "jinja2"}),
}


def missing_extra(module: str | None) -> str | None:
    """The extra that would have installed ``module``, if one would."""
    top = (module or "").partition(".")[0]
    return next((extra for extra, modules in EXTRAS.items() if top in modules), None)


def main() -> int:
    try:
        from worker.cli.main import main as run  # noqa: PLC0415 - needs the worker extra

        return run()
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc.name)
        if extra is None:
            raise
        sys.stderr.write(
            f"msgworker: this command needs the {extra} extra ({exc.name} is not installed): "
            f"pip install 'msgworker[{extra}]'. The producer API (from msgworker import "
            "enqueue) works without it.\n"
        )
        return EXIT_USAGE
