"""`msgworker sandbox`: the local fake Gateway, every knob it starts with a flag."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from worker.cli.exits import EXIT_OK


def add_sandbox_command(commands: Any) -> None:
    """Add `sandbox` to the CLI's subcommands (``commands``, argparse's subparsers action)."""
    sandbox = commands.add_parser("sandbox", help="run the local fake Gateway")
    _gateway_options(sandbox)
    _meta_options(sandbox)
    sandbox.set_defaults(handler=_sandbox)


def _gateway_options(sandbox: argparse.ArgumentParser) -> None:
    """How the Gateway answers: address, limits, balance, faults, keys."""
    sandbox.add_argument("--host", default="127.0.0.1", help="address (default: %(default)s)")
    sandbox.add_argument("--port", type=int, default=8099, help="port (default: %(default)s)")
    sandbox.add_argument(
        "--rate-per-sec", type=int, default=80, help="each key's limit (default: %(default)s)"
    )
    sandbox.add_argument(
        "--rate-per-min", type=int, default=4800, help="each key's limit (default: %(default)s)"
    )
    sandbox.add_argument(
        "--balance", type=float, default=1000.0, help="each key's balance (default: %(default)s)"
    )
    sandbox.add_argument(
        "--fault-rate",
        type=_fraction,
        default=0.0,
        help="share of requests answered with a fault, 0 to 1 (default: %(default)s)",
    )
    sandbox.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="time before each answer (default: %(default)s)",
    )
    sandbox.add_argument(
        "--api-key", action="append", help="a key the sandbox accepts (repeatable; sk_sandbox)"
    )


def _meta_options(sandbox: argparse.ArgumentParser) -> None:
    """What comes back later from WhatsApp: the status webhooks and Meta's verdicts."""
    sandbox.add_argument("--webhook-url", help="post status webhooks for accepted messages here")
    sandbox.add_argument("--webhook-secret", help="the Bearer secret those webhooks carry")
    sandbox.add_argument(
        "--webhook-delays",
        type=_delays,
        default=(0.0, 0.05, 0.1),
        metavar="SENT,DELIVERED,READ",
        help="seconds after acceptance of each status (default 0,0.05,0.1)",
    )
    sandbox.add_argument(
        "--failing-recipient", action="append", help="a number that gets failed 131026 (repeatable)"
    )
    sandbox.add_argument(
        "--recipient-error",
        action="append",
        type=_recipient_error,
        metavar="NUMBER=CODE",
        help="a number that gets failed with this WhatsApp error code (repeatable)",
    )
    sandbox.add_argument(
        "--pair-interval",
        type=float,
        default=0.0,
        metavar="S",
        help="Meta's pair rate limit: messages to one number closer than this fail 131056 "
        "(default: %(default)s, off)",
    )
    sandbox.add_argument(
        "--pair-burst",
        type=int,
        default=1,
        help="messages to one number allowed within the pair interval (default: %(default)s)",
    )
    sandbox.add_argument(
        "--paused-template",
        action="append",
        metavar="NAME:LANGUAGE",
        help="a template Meta has paused: its messages fail 132015 (repeatable)",
    )


def _sandbox(args: argparse.Namespace) -> int:
    from worker.sandbox.server import SandboxConfig, serve  # noqa: PLC0415 - aiohttp only when asked

    config = SandboxConfig(
        api_keys=tuple(args.api_key or ("sk_sandbox",)),
        rate_per_sec=args.rate_per_sec,
        rate_per_min=args.rate_per_min,
        balance=args.balance,
        fault_rate=args.fault_rate,
        latency_ms=args.latency_ms,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret or "",
        webhook_sent_s=args.webhook_delays[0],
        webhook_delivered_s=args.webhook_delays[1],
        webhook_read_s=args.webhook_delays[2],
        failing_recipients=tuple(args.failing_recipient or ()),
        recipient_errors=dict(args.recipient_error or ()),
        pair_interval_s=args.pair_interval,
        pair_burst=args.pair_burst,
        paused_templates=tuple(args.paused_template or ()),
    )
    print(f"sandbox gateway on http://{args.host}:{args.port}", file=sys.stderr)
    serve(config, args.host, args.port)
    return EXIT_OK


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _recipient_error(text: str) -> tuple[str, int]:
    number, _, code = text.partition("=")
    if not code.isdigit():
        raise argparse.ArgumentTypeError("must be NUMBER=CODE, e.g. 905551112233=131050")
    return number, int(code)


def _delays(text: str) -> tuple[float, float, float]:
    parts = text.split(",")
    try:
        values = tuple(float(part) for part in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or not all(0 <= v < 86400 for v in values):
        raise argparse.ArgumentTypeError("must be three seconds: SENT,DELIVERED,READ")
    return values
