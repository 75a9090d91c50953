"""``msgworker enqueue``: one message from its options, or a JSON-lines file, all or nothing."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import Any

from worker.cli.exits import EXIT_OK, EXIT_USAGE
from worker.errors import InvalidMessage


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"account": args.account}
    for name in ("idempotency_key", "send_at", "expires_at", "ttl_s"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    return options


def read_json_lines(stream: Iterable[str]) -> tuple[list[tuple[int, Any]], list[str]]:
    """Parse a JSON-lines stream: (line number, item) for each good line, an error per bad one."""
    items: list[tuple[int, Any]] = []
    problems: list[str] = []
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            items.append((number, json.loads(line)))
        except ValueError as exc:
            problems.append(f"line {number}: not JSON ({str(exc).split(':')[0]})")
        except RecursionError:
            problems.append(f"line {number}: nested too deeply")
    return items, problems


def read_json_file(path: str, *, refused: str) -> tuple[list[tuple[int, Any]], list[str]] | None:
    """The JSON lines of ``path`` (``-``: stdin), as ``read_json_lines``; None when the file
    cannot be read, after saying why and ``refused`` (what was not done)."""
    try:
        if path == "-":
            return read_json_lines(sys.stdin)
        with open(path, encoding="utf-8") as stream:  # noqa: PTH123 - a path or "-"
            return read_json_lines(stream)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        print(f"msgworker: cannot read {path}: {reason}, {refused}", file=sys.stderr)
        return None


def refuse_bad_lines(problems: list[str], *, refused: str) -> int:
    """Report every bad line, by line number, and what was not done; the usage exit code."""
    problems = sorted(problems, key=lambda text: int(text.split(":")[0].removeprefix("line ")))
    print(f"msgworker: {len(problems)} bad line(s), {refused}:", file=sys.stderr)
    for text in problems:
        print(f"  {text}", file=sys.stderr)
    return EXIT_USAGE


def enqueue_command(args: argparse.Namespace) -> int:
    """``msgworker enqueue``: one message from the options, or every line of a JSON-lines file."""
    from worker.service.runtime import current_runtime  # noqa: PLC0415 - settings read on use

    producer = current_runtime().producer
    if args.file is not None:
        return _enqueue_file(args, producer)
    if args.text is not None:
        message: dict[str, Any] = {"to": args.to, "type": "text", "text": {"body": args.text}}
    else:
        template = {"name": args.template, "language": {"code": args.lang}}
        message = {"to": args.to, "type": "template", "template": template}
    try:
        print(producer.enqueue(message, **_options(args)))
    except InvalidMessage as exc:
        print(f"msgworker: refused, nothing enqueued: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _enqueue_file(args: argparse.Namespace, producer: Any) -> int:
    """All lines go in, or none: every bad line is reported with its number."""
    read = read_json_file(args.file, refused="nothing enqueued")
    if read is None:
        return EXIT_USAGE
    items, problems = read
    defaults = _options(args)
    envelopes = [
        {**defaults, **item}
        if isinstance(item, dict) and "message" in item
        else {**defaults, "message": item}
        for _, item in items
    ]
    ids: list[str] = []
    try:
        # With unparsable lines nothing is written, but the parsed ones are still checked.
        ids = producer.enqueue_many(envelopes) if not problems else []
        if problems:
            producer.validate_many(envelopes)
    except InvalidMessage as exc:
        for problem in exc.problems:
            index, _, field = problem.field.partition("].")
            line = items[int(index.lstrip("["))][0]
            problems.append(f"line {line}: {field}: {problem.message}")
    if problems:
        return refuse_bad_lines(problems, refused="nothing enqueued")
    for job_id in ids:
        print(job_id)
    return EXIT_OK
