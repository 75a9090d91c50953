"""The ``msgworker`` command: parses arguments and delegates; the work lives elsewhere."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from worker.errors import ConfigError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CONFIG = 78  # sysexits EX_CONFIG: a bad setting stops start-up


def _sandbox(args: argparse.Namespace) -> int:
    from worker.sandbox import SandboxConfig, serve  # noqa: PLC0415 - aiohttp only when asked

    config = SandboxConfig(
        api_keys=tuple(args.api_key or ("sk_sandbox",)),
        rate_per_sec=args.rate_per_sec,
        rate_per_min=args.rate_per_min,
        balance=args.balance,
        fault_rate=args.fault_rate,
        latency_ms=args.latency_ms,
    )
    print(f"sandbox gateway on http://{args.host}:{args.port}", file=sys.stderr)
    serve(config, args.host, args.port)
    return EXIT_OK


def _demo(_args: argparse.Namespace) -> int:
    from worker.demo import run_demo  # noqa: PLC0415

    return run_demo()


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="msgworker", description="Resilient WhatsApp message sending through the Gateway."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sandbox = commands.add_parser("sandbox", help="run the local fake Gateway (SPEC §6)")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8099)
    sandbox.add_argument("--rate-per-sec", type=int, default=80)
    sandbox.add_argument("--rate-per-min", type=int, default=4800)
    sandbox.add_argument("--balance", type=float, default=1000.0)
    sandbox.add_argument("--fault-rate", type=_fraction, default=0.0)
    sandbox.add_argument("--latency-ms", type=float, default=0.0)
    sandbox.add_argument(
        "--api-key", action="append", help="a key the sandbox accepts (repeatable; sk_sandbox)"
    )
    sandbox.set_defaults(handler=_sandbox)

    demo = commands.add_parser("demo", help="show the product working on this machine")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"msgworker: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    return code
