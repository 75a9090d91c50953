"""``msgworker template hold|release NAME --lang L [--account A]``: a template's hold by hand.

A hold keeps every pending job of the account using that template and language from the
Gateway (each is held at its begin); a release puts them back, due now, each sent once. The same
as Meta's PAUSED and REINSTATED reviews do (docs/whatsapp.md).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import Any

from worker.accounts import unknown_account_message
from worker.cli.exits import EXIT_OK, EXIT_USAGE
from worker.models import LANGUAGE_CODE, TEMPLATE_NAME


def add_template_command(
    commands: Any,
    add_account: Callable[[argparse.ArgumentParser], None],
    runtime: Callable[[], Any],
) -> None:
    """The ``template`` command and its two subcommands, on the CLI's subparsers."""
    template = commands.add_parser("template", help="hold or release a WhatsApp template's jobs")
    actions = template.add_subparsers(dest="template_command", required=True)
    for name, help_text, run in (
        ("hold", "hold the account's jobs using the template (no Gateway call)", _hold),
        ("release", "release the template: every held job is sent once", _release),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument(
            "name", type=_matching(TEMPLATE_NAME, "a template name"), help="the template's name"
        )
        action.add_argument(
            "--lang",
            required=True,
            type=_matching(LANGUAGE_CODE, "a language code"),
            help="the template's language code (en_US)",
        )
        add_account(action)
        action.set_defaults(handler=_with_runtime(run, runtime))


def _matching(pattern: str, what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not re.match(pattern, value):
            raise argparse.ArgumentTypeError(f"{value[:80]!r} is not {what}")
        return value

    return check


def _with_runtime(
    run: Callable[[argparse.Namespace, Any], int], runtime: Callable[[], Any]
) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        process_runtime = runtime()
        if args.account not in process_runtime.known_accounts:
            message = unknown_account_message(args.account, process_runtime.known_accounts)
            print(f"msgworker template: {message}", file=sys.stderr)
            return EXIT_USAGE
        return run(args, process_runtime)

    return handler


def _hold(args: argparse.Namespace, runtime: Any) -> int:
    from worker.service.operations import hold_template  # noqa: PLC0415 - the runtime on use

    held = hold_template(runtime, args.account, args.name, args.lang)
    what = f"template {args.name} ({args.lang}) of account {args.account}"
    if held:
        print(f"{what} held: its jobs wait until `msgworker template release`")
    else:
        print(f"{what} was already held")
    return EXIT_OK


def _release(args: argparse.Namespace, runtime: Any) -> int:
    from worker.service.operations import release_template  # noqa: PLC0415 - the runtime on use

    released = release_template(runtime, args.account, args.name, args.lang)
    what = f"template {args.name} ({args.lang}) of account {args.account}"
    if released.was_held:
        print(f"{what} released; {released.jobs} held job(s) go out once")
    else:
        print(f"{what} was not held; {released.jobs} held job(s) released")
    return EXIT_OK
