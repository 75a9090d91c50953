"""The night shift's commands: status, job, halt, resume and the dead-letter queue.

Each takes the parsed arguments and a runtime, prints for people (or ``--json`` for scripts)
and returns the exit code; ``worker.cli.main`` parses and dispatches.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from worker.cli.console import Output, emit, progress_bar
from worker.cli.enqueue import read_json_file, refuse_bad_lines
from worker.cli.exits import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from worker.logs import mask_phone
from worker.observe.status import AccountState
from worker.observe.views import dead_letter_view, iso, job_view, limits_view, status_view
from worker.service.operations import halt_account, resume_account
from worker.service.runtime import Runtime
from worker.settings import mask_url
from worker.store.deadletters import DeadLetter, ReplayReport, Selection, leave_out_opted_out
from worker.store.drain import drain, replay_rate
from worker.store.restore import Restore, is_job_id, parse_export


def _ago(at: float | None) -> str:
    if at is None:
        return ""
    seconds = max(0, int(time.time() - at))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "never at the current rate (nothing is being sent)"
    if seconds < 120:
        return f"~{seconds:.0f} s"
    return f"~{seconds / 60:.0f} min"


def status(args: argparse.Namespace, runtime: Runtime) -> int:
    from worker.service.app import broker_depth, get_app  # noqa: PLC0415 - Celery only when asked

    # A command fails fast: a broker that does not answer within REDIS_TIMEOUT_S is exit 69.
    depth = broker_depth(
        get_app(), runtime.settings.queue, timeout_s=runtime.settings.redis_timeout_s
    )
    snapshot = runtime.snapshot(depth)
    redis_url = mask_url(runtime.settings.state_url)
    if args.json:
        # The top-level switches are the account asked for, else the first configured one.
        account = args.account or next(iter(runtime.accounts))
        emit(status_view(snapshot, account, redis_url=redis_url, rate=runtime.rate_limit))
        return EXIT_OK
    shown = [args.account] if args.account else sorted(snapshot.accounts)
    states = {
        name: snapshot.accounts.get(name) or AccountState(None, None, None, 0) for name in shown
    }
    held = sum(state.held for state in states.values())
    out = Output()
    rows: list[tuple[str, str, str | None]] = [
        ("redis", redis_url, None),
        ("  store", f"{snapshot.engines.store.value}: {snapshot.engines.nodes}", None),
        ("broker", snapshot.engines.broker.value, None),
        ("queue", snapshot.queue, None),
        ("  due now", f"{snapshot.depth} (in the broker {snapshot.in_broker})", None),
        ("  scheduled", str(snapshot.scheduled), None),
        ("  held", str(held), "yellow" if held else None),
        ("  in flight", str(snapshot.in_flight), None),
        ("  sending", f"{snapshot.sends_per_s:.1f}/s", None),
        ("  workers alive", str(snapshot.workers), None if snapshot.workers else "yellow"),
        ("  backlog clears in", _duration(snapshot.drain_s) if snapshot.depth else "-", None),
    ]
    for name, state in states.items():
        rows += _account_rows(name, state, runtime, several=len(snapshot.accounts) > 1)
    total = sum(snapshot.dead_letters.values())
    by_code = ", ".join(f"{c} {n}" for c, n in sorted(snapshot.dead_letters.items()))
    rows.append(("dead letters", f"{total}" + (f" ({by_code})" if by_code else ""), None))
    out.pairs(rows)
    return EXIT_OK


def _account_rows(
    name: str, state: AccountState, runtime: Runtime, *, several: bool
) -> list[tuple[str, str, str | None]]:
    """One account's switches, held jobs and limits (its due jobs and dead letters when the
    deployment has several accounts: with one, the queue's figures are its own)."""
    rows: list[tuple[str, str, str | None]] = [(f"account {name}", "", None)]
    halt = state.halt
    if halt is None:
        rows.append(("  halted", "no", "green"))
    else:
        since = (
            "since an unknown time"
            if halt.since is None
            else f"since {iso(halt.since)} ({_ago(halt.since)})"
        )
        if halt.by_operator:
            who = f"by the operator ({halt.code}), until `msgworker resume`"
        else:
            every = runtime.settings.halt_probe_interval_s
            who = f"by the Gateway ({halt.code}), probed every {every:g} s: resumes by itself"
        rows.append(("  halted", f"HALTED {who}, {since}: {halt.reason}", "bold red"))
    breaker = state.breaker
    if breaker is None:
        rows.append(("  billing breaker", "closed", "green"))
    else:
        opened = (
            "" if breaker.since is None else f"since {iso(breaker.since)} ({_ago(breaker.since)})"
        )
        half = ", a probe is going out" if breaker.half_open else ""
        rows.append(("  billing breaker", f"OPEN ({breaker.code}) {opened}{half}", "bold red"))
    rows.append(("  held", str(state.held), "yellow" if state.held else None))
    for hold in state.templates_held:
        since = "" if hold.since is None else f" since {iso(hold.since)} ({_ago(hold.since)})"
        release = f"`msgworker template release {hold.name} --lang {hold.language}`"
        text = f"{hold.name} ({hold.language}) {hold.reason}{since}: {hold.jobs} job(s) held"
        rows.append(("  template held", f"{text}; {release}", "yellow"))
    if several:
        rows.append(("  due now", str(state.depth), None))
        rows.append(("  dead letters", str(state.dlq_total), None))
    limits = limits_view(state, runtime.rate_limit.for_account(name))
    learned = [span for span in ("sec", "min") if limits["learned"][span]]
    source = f"learned from the Gateway: {', '.join(learned)}" if learned else "not learned"
    rows.append(("  rate limits", f"{limits['sec']}/s, {limits['min']}/min ({source})", None))
    cooldown = state.cooldown_until
    if cooldown and cooldown > time.time():
        rows.append(("  cooldown", f"until {iso(cooldown)} (RATE_001)", "yellow"))
    else:
        rows.append(("  cooldown", "none", None))
    paused = state.bulk_paused_until
    if paused and paused > time.time():
        rows.append(("  bulk lane", f"paused until {iso(paused)} (131048/130429)", "yellow"))
    return rows


def _delivery(delivery: dict[str, Any] | None) -> str:
    """``read at 2026-…``; a failure with its code and title."""
    if delivery is None:
        return "-"
    error = delivery["error"] or {}
    why = f" ({error.get('code')} {error.get('title', '')})".rstrip() if error else ""
    return f"{delivery['status']} at {delivery['at']}{why}"


def job(args: argparse.Namespace, runtime: Runtime) -> int:
    # Only a well-formed id is looked up: another string could name another kind of key.
    found = runtime.jobs.get(args.id) if is_job_id(args.id) else None
    if found is None:
        print(f"msgworker: no job {args.id} (sent jobs are forgotten in time)", file=sys.stderr)
        return EXIT_FAILURE
    view = job_view(found)
    if args.json:
        emit(view)
        return EXIT_OK
    out = Output()
    out.pairs(
        [
            ("job", view["id"], None),
            ("state", view["state"], "bold"),
            ("account", view["account"], None),
            ("attempts", str(view["attempts"]), None),
            ("last code", view["last_code"] or "-", None),
            ("wamid", view["wamid"] or "-", None),
            ("delivery", _delivery(view["delivery"]), None),
        ]
    )
    rows = [
        (e["at"], e["event"], e["code"] or "", e["action"] or "", _delay(e["delay_s"]))
        for e in view["history"]
    ]
    out.table(["at", "event", "code", "action", "delay"], rows, title="history")
    return EXIT_OK


def _delay(seconds: float | None) -> str:
    return f"{seconds:g} s" if seconds else ""


def halt(args: argparse.Namespace, runtime: Runtime) -> int:
    created = halt_account(runtime, args.account, reason=args.reason)
    if created:
        print(f"account {args.account} halted: nothing is sent until `msgworker resume`")
    else:
        print(f"account {args.account} was already halted")
    return EXIT_OK


def resume(args: argparse.Namespace, runtime: Runtime) -> int:
    released = resume_account(runtime, args.account)
    runtime.close()
    print(f"account {args.account} resumed; {released} held job(s) released")
    return EXIT_OK


def cooldown_clear(args: argparse.Namespace, runtime: Runtime) -> int:
    """End a RATE_001 cooldown now (one set from a garbled wait, or waited out by hand)."""
    cleared = runtime.switches.clear_cooldown(args.account)
    runtime.close()
    print(f"account {args.account}: " + ("cooldown cleared" if cleared else "no cooldown"))
    return EXIT_OK


def _selection(args: argparse.Namespace) -> Selection:
    since = getattr(args, "since", None)
    return Selection(
        account=getattr(args, "account", None),
        code=args.code,
        ids=tuple(i for i in getattr(args, "id", None) or () if is_job_id(i)),
        since=datetime.fromisoformat(since).timestamp() if since else None,
        limit=getattr(args, "limit", None),
    )


def _select(args: argparse.Namespace, runtime: Runtime) -> Iterator[DeadLetter]:
    """The dead letters the arguments name, of ``--account`` only when it was given."""
    selection = _selection(args)
    if getattr(args, "id", None) and not selection.ids:
        return  # only ids that name no job: nothing (never "everything")
    yield from runtime.dead_letters.select(selection)


def dlq_list(args: argparse.Namespace, runtime: Runtime) -> int:
    records = list(_select(args, runtime))
    if args.json:
        for record in records:
            emit(dead_letter_view(record))
        return EXIT_OK
    out = Output()
    if not records:
        out.say("no dead letters")
        return EXIT_OK
    rows = [_record_row(record, reveal=args.reveal) for record in records]
    out.table(["parked at", "id", "code", "reason", "attempts", "to"], rows)
    out.say(f"{len(records)} dead letter(s)")
    return EXIT_OK


def _record_row(record: DeadLetter, *, reveal: bool) -> tuple[Any, ...]:
    to = str(record.message.get("to", ""))
    return (
        iso(record.parked_at),
        record.id,
        record.code,
        record.reason,
        record.attempts,
        to if reveal else mask_phone(to),
    )


def dlq_show(args: argparse.Namespace, runtime: Runtime) -> int:
    record = runtime.dead_letters.get(args.id) if is_job_id(args.id) else None
    if record is None:
        print(f"msgworker: no dead letter {args.id}", file=sys.stderr)
        return EXIT_FAILURE
    view = dead_letter_view(record)
    if args.json:  # for tools: complete
        emit(view)
        return EXIT_OK
    if not args.reveal and isinstance(view.get("message"), dict) and "to" in view["message"]:
        view["message"] = {**view["message"], "to": mask_phone(str(view["message"]["to"]))}
    print(json.dumps(view, indent=2, ensure_ascii=False))
    return EXIT_OK


def dlq_export(args: argparse.Namespace, runtime: Runtime) -> int:
    for record in _select(args, runtime):
        emit(dead_letter_view(record))
    return EXIT_OK


@contextmanager
def _stop_on_interrupt() -> Iterator[list[bool]]:
    """Ctrl-C asks the drain to stop after the slice in hand, instead of killing it mid-way."""
    asked = [False]

    def ask(_signum: int, _frame: object) -> None:
        asked[0] = True

    previous = signal.signal(signal.SIGINT, ask)
    try:
        yield asked
    finally:
        signal.signal(signal.SIGINT, previous)


def dlq_replay(args: argparse.Namespace, runtime: Runtime) -> int:
    if not (args.code or args.id or args.all):
        print("msgworker: say what to replay: --code C, --id ID… or --all", file=sys.stderr)
        return EXIT_USAGE
    records, opted_out = leave_out_opted_out(
        _select(args, runtime), named=bool(args.id), include_opted_out=args.include_opted_out
    )
    ids = [record.id for record in records]
    # Replays share the account's limit with live traffic: never faster than RATE_PER_SEC.
    rate = replay_rate(args.rate, runtime.settings.rate_per_sec)
    if args.dry_run:
        for job_id in ids:
            print(job_id)
        print(f"would replay {len(ids)} dead letter(s) at {rate:g}/s", file=sys.stderr)
        if opted_out:
            print(f"left {opted_out} opted out (--include-opted-out)", file=sys.stderr)
        return EXIT_OK
    started = time.monotonic()
    with (
        _stop_on_interrupt() as asked,
        progress_bar(len(ids), "replaying", enabled=sys.stderr.isatty() and not args.json) as show,
    ):
        report = drain(
            runtime.dead_letters,
            ids,
            rate_per_s=rate,
            on_progress=lambda r: show(r.done),
            should_stop=lambda: asked[0],
        )
    interrupted = asked[0] and report.done < len(ids)
    took_s = time.monotonic() - started
    _replay_summary(args, report, len(ids), rate, took_s, interrupted, opted_out)
    return EXIT_INTERRUPTED if interrupted else EXIT_OK


def _replay_summary(
    args: argparse.Namespace,
    report: ReplayReport,
    total: int,
    rate: float,
    took_s: float,
    interrupted: bool,
    opted_out: int,
) -> None:
    summary = {
        "replayed": report.replayed,
        "skipped_already_sent": report.already_sent,
        "skipped_delivered": report.delivered,
        "skipped_expired": report.expired,
        "skipped_opted_out": opted_out,
        "missing": report.missing,
    }
    if args.json:
        emit({**summary, "remaining": total - report.done} if interrupted else summary)
        return
    head = "stopped" if interrupted else "done"
    print(
        f"{head}: replayed {report.replayed} at {rate:g}/s in {took_s:.1f} s; skipped "
        f"{report.already_sent} already sent, {report.delivered} already delivered, "
        f"{report.expired} expired, {opted_out} opted out (--include-opted-out sends them)"
    )
    if interrupted:
        print(f"{total - report.done} left in the dead-letter queue: run the same command to go on")


def dlq_purge(args: argparse.Namespace, runtime: Runtime) -> int:
    if not (args.code or args.id or args.all or args.account):
        print(
            "msgworker: say what to purge: --code C, --id ID…, --account A or --all",
            file=sys.stderr,
        )
        return EXIT_USAGE
    ids = [record.id for record in _select(args, runtime)]
    if not args.yes:
        if not sys.stdin.isatty():
            print("msgworker: purging needs --yes when not on a terminal", file=sys.stderr)
            return EXIT_USAGE
        answer = input(f"purge {len(ids)} dead letter(s) for good? [y/N] ")
        if answer.strip().lower() not in {"y", "yes"}:
            print("nothing purged")
            return EXIT_OK
    print(f"purged {runtime.dead_letters.purge(ids)} dead letter(s)")
    return EXIT_OK


def dlq_import(args: argparse.Namespace, runtime: Runtime) -> int:
    """Every line checked first: one bad line and nothing is written."""

    read = read_json_file(args.file, refused="nothing imported")
    if read is None:
        return EXIT_USAGE
    lines, problems = read
    records, bad = parse_export(lines, runtime.known_accounts)
    if problems or bad:
        return refuse_bad_lines(problems + bad, refused="nothing imported")
    report = Restore(runtime.redis, runtime.keys).put_back(records)
    print(
        f"imported {report.imported} dead letter(s); skipped {report.already_there} already "
        f"in the dead-letter queue, {report.not_parked} whose job is no longer parked"
    )
    return EXIT_OK
