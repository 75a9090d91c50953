"""The ``msgworker`` command: parses arguments and delegates; the work lives elsewhere.

Exit codes: see ``worker.cli.exits``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import redis
from kombu.exceptions import OperationalError as BrokerError

from worker.account_names import DEFAULT_ACCOUNT
from worker.accounts import known_accounts, unknown_account_message
from worker.cli.enqueue import enqueue_command
from worker.cli.exits import (
    EXIT_CONFIG,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
)
from worker.cli.sandbox_command import add_sandbox_command
from worker.cli.template_command import add_template_command
from worker.cli.worker_command import worker_command
from worker.errors import ConfigError, ReplicasMissing, Unavailable
from worker.logs import configure_logging
from worker.settings import get_settings, mask_url
from worker.store.connect import connection_problem

Handler = Callable[[argparse.Namespace], int]
CODE_HELP = "those parked with this code (e.g. BILL_001, WA_131026)"


def _runtime(*, fail_fast: bool = True) -> Any:
    """The process's runtime; commands fail fast (exit 69 within REDIS_TIMEOUT_S), a worker
    rides out an outage."""
    from worker.service.runtime import current_runtime  # noqa: PLC0415 - settings read on use

    return current_runtime(fail_fast=fail_fast)


# ---------------------------------------------------------------- sandbox, demo


def _serve(args: argparse.Namespace) -> int:
    from worker.http.app import serve  # noqa: PLC0415 - the serve extra, only when asked

    serve(host=args.host, port=args.port, workers=args.workers)
    return EXIT_OK


def _demo(_args: argparse.Namespace) -> int:
    from worker.dev.demo import run_demo  # noqa: PLC0415

    return run_demo()


# ---------------------------------------------------------------- producing


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None


def _iso_time(text: str) -> str:
    """An ISO 8601 time, checked as it is parsed and kept as text (``--since``)."""
    _parse_time(text)
    return text


# ---------------------------------------------------------------- operating


def _operate(name: str) -> Handler:
    """A handler that runs ``worker.cli.commands.<name>`` with this process's runtime."""

    def handler(args: argparse.Namespace) -> int:
        from worker.cli import commands as operate  # noqa: PLC0415 - settings read on use

        command: Callable[[argparse.Namespace, Any], int] = getattr(operate, name)
        return command(args, _runtime())

    return handler


def _list_workers(args: argparse.Namespace) -> int:
    from worker.cli.workers import workers  # noqa: PLC0415 - settings read on use

    return workers(args, _runtime())


# ---------------------------------------------------------------- parsing


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _code(text: str) -> str:
    """An outcome code as given on the command line: ``bill_001`` is ``BILL_001``."""
    return text.strip().upper()


def _account(text: str) -> str:
    """An account the deployment knows; any other is refused, naming the known ones."""
    try:
        known = known_accounts(get_settings().accounts_file)
    except ConfigError:  # main() reports a bad setting or accounts file, exit 78
        return text
    if text not in known:
        raise argparse.ArgumentTypeError(unknown_account_message(text, known))
    return text


def _add_account(parser: argparse.ArgumentParser, *, default: str | None = DEFAULT_ACCOUNT) -> None:
    """``--account``: validated here for every command; None as default means "every account"."""
    shown = f"default: {default}" if default else "default: every account"
    # The default is not checked here: jobs that name no account are the producer's to refuse.
    parser.add_argument("--account", type=_account, help=f"the account ({shown})")
    parser.set_defaults(account_default=default)


def _version() -> str:
    try:
        return version("msgworker")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - one place lists every command
    parser = argparse.ArgumentParser(
        prog="msgworker", description="Resilient WhatsApp message sending through the Gateway."
    )
    parser.add_argument("--version", action="version", version=f"msgworker {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    worker = commands.add_parser(
        "worker",
        help="a worker on the queue (any celery worker option may follow; see --help)",
        prefix_chars="\0",  # every option goes to celery worker untouched
    )
    worker.add_argument("celery_args", nargs=argparse.REMAINDER)
    worker.set_defaults(handler=worker_command)

    enqueue = commands.add_parser("enqueue", help="enqueue messages; prints a job id per line")
    what = enqueue.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="a text message (with --to)")
    what.add_argument("--template", help="a template name (with --to and --lang)")
    what.add_argument("--file", help="JSON lines (a payload or an envelope per line), - for stdin")
    enqueue.add_argument("--to", help="recipient, country code first")
    enqueue.add_argument("--lang", default="en", help="template language code (default: en)")
    enqueue.add_argument(
        "--idempotency-key", help="the same key again enqueues nothing and prints the first id"
    )
    enqueue.add_argument("--send-at", type=_parse_time, help="ISO 8601 time with zone")
    enqueue.add_argument("--expires-at", type=_parse_time, help="ISO 8601 time with zone")
    enqueue.add_argument("--ttl", dest="ttl_s", type=_positive, help="seconds after send-at")
    _add_account(enqueue)
    enqueue.set_defaults(handler=enqueue_command)

    job = commands.add_parser("job", help="a job's state and history")
    job.add_argument("id", help="the job id enqueue printed")
    job.add_argument("--json", action="store_true", help="one JSON object, complete")
    job.set_defaults(handler=_operate("job"))

    workers = commands.add_parser(
        "workers", help="each worker: host, pid, pool, threads, last heartbeat, sends a minute"
    )
    workers.add_argument("--json", action="store_true", help="one JSON object, complete")
    workers.set_defaults(handler=_list_workers)

    status = commands.add_parser("status", help="queue, halt, breaker, cooldown, dead letters")
    status.add_argument("--json", action="store_true", help="one JSON object, complete")
    _add_account(status, default=None)
    status.set_defaults(handler=_operate("status"))

    halt = commands.add_parser("halt", help="stop all sending of the account")
    halt.add_argument(
        "--reason", required=True, help="why (shown to everyone, in status and the console)"
    )
    _add_account(halt)
    halt.set_defaults(handler=_operate("halt"))

    resume = commands.add_parser("resume", help="lift a halt; held jobs go out once")
    _add_account(resume)
    resume.set_defaults(handler=_operate("resume"))

    # `msgworker cooldown clear`: end a RATE_001 cooldown by hand.
    cooldown = commands.add_parser("cooldown", help="the account's RATE_001 cooldown")
    cooldown_commands = cooldown.add_subparsers(dest="cooldown_command", required=True)
    cooldown_clear = cooldown_commands.add_parser("clear", help="end the cooldown now")
    _add_account(cooldown_clear)
    cooldown_clear.set_defaults(handler=_operate("cooldown_clear"))

    add_template_command(commands, _add_account, _runtime)

    dlq = commands.add_parser("dlq", help="the dead-letter queue").add_subparsers(
        dest="dlq_command", required=True, metavar="DLQ_COMMAND"
    )
    listing = dlq.add_parser("list", help="parked jobs, oldest first")
    listing.add_argument("--code", type=_code, help=CODE_HELP)
    listing.add_argument("--since", type=_iso_time, help="ISO 8601 time")
    listing.add_argument("--limit", type=int, help="at most this many")
    listing.add_argument("--json", action="store_true", help="JSON lines, complete")
    listing.add_argument("--reveal", action="store_true", help="show numbers unmasked")
    _add_account(listing, default=None)
    listing.set_defaults(handler=_operate("dlq_list"))
    show = dlq.add_parser("show", help="one dead letter")
    show.add_argument("id", help="the parked job's id")
    show.add_argument("--json", action="store_true", help="one JSON line, complete")
    show.add_argument("--reveal", action="store_true", help="show the number unmasked")
    show.set_defaults(handler=_operate("dlq_show"))
    export = dlq.add_parser("export", help="dead letters as JSON lines")
    export.add_argument("--code", type=_code, help=CODE_HELP)
    export.add_argument("--since", type=_iso_time, help="ISO 8601 time")
    _add_account(export, default=None)
    export.set_defaults(handler=_operate("dlq_export"))
    replay = dlq.add_parser("replay", help="send parked jobs again, paced (after a fix)")
    replay.add_argument("--code", type=_code, help=CODE_HELP)
    replay.add_argument("--id", nargs="+", help="these dead letters (job ids)")
    replay.add_argument("--all", action="store_true", help="every dead letter (of --account)")
    replay.add_argument(
        "--rate",
        type=_positive,
        help="jobs per second (default RATE_PER_SEC/2, at most RATE_PER_SEC)",
    )
    replay.add_argument(
        "--include-opted-out",
        action="store_true",
        help="with --code or --all: also the jobs of users who stopped marketing (131050)",
    )
    replay.add_argument("--dry-run", action="store_true", help="say what would go, send nothing")
    replay.add_argument("--json", action="store_true", help="the counts as one JSON object")
    _add_account(replay, default=None)
    replay.set_defaults(handler=_operate("dlq_replay"))
    purge = dlq.add_parser(
        "purge", help="remove dead letters for good: those of --code, --id, --account, or --all"
    )
    which = purge.add_mutually_exclusive_group()
    which.add_argument("--code", type=_code, help=CODE_HELP)
    which.add_argument("--id", nargs="+", help="these dead letters (job ids)")
    which.add_argument("--all", action="store_true", help="every dead letter (of --account)")
    purge.add_argument("--yes", action="store_true", help="do not ask (needed off a terminal)")
    _add_account(purge, default=None)
    purge.set_defaults(handler=_operate("dlq_purge"))

    restore = dlq.add_parser(
        "import", help="put exported dead letters back, each once (nothing is sent)"
    )
    restore.add_argument("file", help="a `dlq export` file (JSON lines), - for stdin")
    restore.set_defaults(handler=_operate("dlq_import"))

    add_sandbox_command(commands)

    serve = commands.add_parser("serve", help="the HTTP API: ingest, health, metrics")
    serve.add_argument("--host", help="address to listen on (default: SERVE_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default: SERVE_PORT)")
    serve.add_argument("--workers", type=int, default=1, help="processes (they share only Redis)")
    serve.set_defaults(handler=_serve)

    demo = commands.add_parser("demo", help="show the product working on this machine")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "account", None) is None and hasattr(args, "account_default"):
        args.account = args.account_default
    if args.command == "enqueue" and args.file is None and not args.to:
        print("msgworker enqueue: --to is required with --text or --template", file=sys.stderr)
        return EXIT_USAGE
    handler: Handler = args.handler
    try:
        # Every command stops on a bad or unknown setting or accounts file before doing anything.
        known_accounts(get_settings().accounts_file)
    except ConfigError as exc:
        print(f"msgworker: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command != "worker":  # a worker configures its logging as Celery starts
        # Commands talk to people on stdout; their few log lines (alerts) go to stderr.
        configure_logging(level="WARNING")
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"msgworker: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ReplicasMissing as exc:
        print(f"msgworker: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except (redis.ConnectionError, redis.TimeoutError, Unavailable) as exc:
        # The settings, not the runtime: a cluster's client connects as it is made, so the
        # runtime may be what could not be made.
        url = mask_url(get_settings().state_url)
        problem = connection_problem(exc)
        print(
            f"msgworker: cannot reach Redis at {url}{f': {problem}' if problem else ''}",
            file=sys.stderr,
        )
        return EXIT_UNAVAILABLE
    except BrokerError:
        url = mask_url(get_settings().broker_url)
        print(f"msgworker: cannot reach the broker at {url}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
