"""``msgworker worker``: a Celery worker on msgworker's queue, with the defaults a sender wants
(threads, many of them, its queue, a node name of its own), any ``celery worker`` option winning
over them; and its ``--help``, which says so before Celery's own options."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from worker.cli.exits import EXIT_OK

# Sends wait ~300 ms on the Gateway; 100 threads keep ~300 calls/s in flight from one process.
DEFAULT_THREADS = 100
DESCRIPTION = f"""\
usage: msgworker worker [CELERY WORKER OPTIONS]

Runs a worker: it takes jobs from msgworker's queue, sends them through the Gateway and records
every outcome in Redis; its pump moves due jobs to the queue. Settings come from MSGWORKER_*
variables (or .env), as for every msgworker command; metrics on MSGWORKER_METRICS_PORT.

msgworker starts `celery worker` with these defaults, each replaced by the same option given
here: --pool threads --concurrency {DEFAULT_THREADS} --queues <MSGWORKER_QUEUE>
--hostname msgworker-<PID>@<HOST>, and always --without-gossip --without-mingle.

Celery's worker options:

"""


def worker_help() -> str:
    """msgworker's words, then Celery's worker options (without Celery's own introduction)."""
    import click  # noqa: PLC0415 - Celery's command line, only for this help
    from celery.bin.worker import worker as celery_worker  # noqa: PLC0415

    text = celery_worker.get_help(click.Context(celery_worker, info_name="worker"))
    start = text.find("Worker Options:")
    return DESCRIPTION + (text[start:] if start >= 0 else text) + "\n"


def _fresh_metrics_directory() -> None:
    """Prometheus multiprocess mode: a clean directory, set before prometheus_client loads."""
    from worker.observe.metrics_dir import prepare_multiprocess_directory  # noqa: PLC0415

    prepare_multiprocess_directory()


def _option(args: Sequence[str], short: str, long: str) -> str | None:
    """The value of a celery option as given (``-c 4``, ``-c4``, ``--concurrency=4``), else None."""
    value = None
    for index, arg in enumerate(args):
        if arg in {short, long}:
            value = args[index + 1] if index + 1 < len(args) else ""
        elif arg.startswith(f"{long}="):
            value = arg.partition("=")[2]
        elif arg.startswith(short) and not arg.startswith("--"):
            value = arg[len(short) :]
    return value


def worker_command(args: argparse.Namespace) -> int:
    """``msgworker worker [CELERY WORKER OPTIONS]``: Celery's worker with msgworker's defaults."""
    given = list(args.celery_args)
    if {"-h", "--help"} & set(given):
        sys.stdout.write(worker_help())
        return EXIT_OK
    from worker.service.cluster import refuse_cluster_worker  # noqa: PLC0415
    from worker.settings import get_settings  # noqa: PLC0415

    refuse_cluster_worker(get_settings())  # before connecting: a refusal, not an outage
    _fresh_metrics_directory()
    from worker.service.app import get_app, prefer_log_level  # noqa: PLC0415 - after the metrics dir
    from worker.service.runtime import current_runtime, refuse_evicting_redis  # noqa: PLC0415

    runtime = current_runtime(fail_fast=False)
    settings = runtime.settings
    refuse_evicting_redis(runtime.redis, warn=False)  # warned once logging is set up
    # Celery's own options win; msgworker's defaults fill in only what was not given.
    defaults: list[str] = []
    pool = _option(given, "-P", "--pool")
    if pool is None:
        # Sends wait on the network: threads keep many in flight in one process.
        pool = "threads"
        defaults += ["--pool", pool]
    if _option(given, "-c", "--concurrency") is None and pool == "threads":
        defaults += ["--concurrency", str(DEFAULT_THREADS)]
    if _option(given, "-Q", "--queues") is None:
        defaults += ["--queues", settings.queue]
    if _option(given, "-n", "--hostname") is None:
        # Celery's default, celery@HOST, is one name for every worker on a host: their control
        # queues clash (RabbitMQ refuses the second with RESOURCE_LOCKED). %h is the host.
        defaults += ["--hostname", f"msgworker-{os.getpid()}@%h"]
    level = _option(given, "-l", "--loglevel")
    if level:
        prefer_log_level(level)
    argv = ["worker", "--without-gossip", "--without-mingle", *defaults, *given]
    get_app().worker_main(argv=argv)
    return EXIT_OK
