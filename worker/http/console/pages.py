"""The console's pages (GET): overview, dead letters, one dead letter, a replay, a job, login."""

from __future__ import annotations

import time
from enum import StrEnum
from itertools import islice
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from worker.account_names import ACCOUNT_NAME
from worker.http.console.components import Console
from worker.http.console.login import login_page
from worker.http.console.render import HERE, Refused, page
from worker.logs import mask_phone
from worker.observe.status import accounts_to_report
from worker.observe.views import dead_letter_view, job_view, limits_view
from worker.store.deadletters import Selection
from worker.store.drain import replay_rate
from worker.store.restore import is_job_id

PAGE_SIZE = 50
# Each page reads the records before it: beyond this many pages, use the CLI (dlq list).
PAGE_NO_MAX = 10_000
CODE_CHARS_MAX = 64
COUNT_MAX = 10**9


class Done(StrEnum):
    """What an action reports on the page it leads to, by name: the page shows only its own
    words (``DONE``), never text from the address, which anyone can write into a link."""

    PURGED = "purged"


DONE = {Done.PURGED: "Purged {n} dead letter(s)."}
STYLESHEET = (HERE / "static" / "console.css").read_text(encoding="utf-8")


def add_pages(router: APIRouter, console: Console) -> None:
    @router.get("/static/console.css")
    def stylesheet() -> Response:
        return Response(STYLESHEET, media_type="text/css")

    @router.get("/login")
    def login_form(request: Request) -> Response:
        # Answers without Redis: the page is static but for its form's token.
        return login_page(console, request, 200, None)

    @router.get("")
    def overview(request: Request) -> HTMLResponse:
        session = console.require(request)
        snapshot = console.runtime.snapshot(lambda: 0)
        rate = console.runtime.rate_limit
        limits = {
            name: limits_view(state, rate.for_account(name))
            for name, state in snapshot.accounts.items()
        }
        return page(
            "overview.html",
            csrf=session.csrf,
            snapshot=snapshot,
            limits=limits,
            now=time.time(),
            nav="overview",
        )

    _add_dead_letter_pages(router, console)
    _add_job_and_account_pages(router, console)


def _add_dead_letter_pages(router: APIRouter, console: Console) -> None:
    @router.get("/dead-letters")
    def dead_letters(
        request: Request,
        account: Annotated[str, Query(pattern=f"^(|{ACCOUNT_NAME.pattern})$")] = "",
        code: Annotated[str, Query(max_length=CODE_CHARS_MAX)] = "",
        page_no: Annotated[int, Query(ge=1, le=PAGE_NO_MAX)] = 1,
        done: Done | None = None,
        n: Annotated[int, Query(ge=0, le=COUNT_MAX)] = 0,
    ) -> HTMLResponse:
        session = console.require(request)
        message = DONE[done].format(n=n) if done is not None else ""
        return _dead_letters_page(console, session.csrf, account, code, page_no, message)

    @router.get("/dead-letters/{job_id}")
    def dead_letter(request: Request, job_id: str) -> HTMLResponse:
        session = console.require(request)
        record = console.runtime.dead_letters.get(job_id) if is_job_id(job_id) else None
        if record is None:
            raise Refused(404, "No such dead letter (replayed or purged since?).")
        view = dead_letter_view(record)
        view.pop("idempotency_key", None)
        message = dict(view.get("message") or {})
        if "to" in message:
            message["to"] = mask_phone(str(message["to"]))
        return page(
            "dead_letter.html",
            csrf=session.csrf,
            record=view,
            message=message,
            default_rate=_default_rate(console),
            nav="dead-letters",
        )

    @router.get("/replays/{run_id}")
    def replay(request: Request, run_id: str) -> HTMLResponse:
        session = console.require(request)
        progress = console.replays.get(run_id)
        if progress is None:
            raise Refused(404, "No such replay (their progress is kept a day).")
        return page("replay.html", csrf=session.csrf, progress=progress, nav="dead-letters")


def _add_job_and_account_pages(router: APIRouter, console: Console) -> None:
    @router.get("/jobs")
    def job(request: Request, id: str = "") -> HTMLResponse:  # noqa: A002 - the form's name
        session = console.require(request)
        found = console.runtime.jobs.get(id) if is_job_id(id) else None
        if id and found is None:
            raise Refused(404, "No such job (settled jobs are forgotten in time).")
        view = job_view(found) if found is not None else None
        return page("job.html", csrf=session.csrf, job=view, asked=id, nav="jobs")

    @router.get("/accounts/{account}/halt")
    def halt_form(request: Request, account: str) -> HTMLResponse:
        session = console.require(request)
        return page(
            "halt.html", csrf=session.csrf, account=console.account(account), nav="overview"
        )

    @router.get("/logout")
    def logout_page() -> RedirectResponse:
        return RedirectResponse("/console", 303)


def _default_rate(console: Console) -> float:
    return replay_rate(None, console.runtime.settings.rate_per_sec)


def _dead_letters_page(
    console: Console, csrf: str, account: str, code: str, page_no: int, done: str
) -> HTMLResponse:
    selection = Selection(account=account or None, code=code or None)
    start = (page_no - 1) * PAGE_SIZE
    found = list(
        islice(console.runtime.dead_letters.select(selection), start, start + PAGE_SIZE + 1)
    )
    counts = console.runtime.dead_letters.counts()
    accounts = sorted(
        accounts_to_report(
            console.runtime.redis, console.runtime.keys, console.runtime.known_accounts
        )
    )
    context: dict[str, Any] = {
        "csrf": csrf,
        "records": found[:PAGE_SIZE],
        "more": len(found) > PAGE_SIZE and page_no < PAGE_NO_MAX,
        "page_no": page_no,
        # Only names the page knows are written back into it, never the address's own text.
        "account": account if account in accounts else "",
        "code": code if code in counts else "",
        "filtered": bool(account or code),
        "codes": sorted(counts.items()),
        "accounts": accounts,
        "total": sum(counts.values()),
        "default_rate": _default_rate(console),
        "max_rate": console.runtime.settings.rate_per_sec,
        "done": done,
        "nav": "dead-letters",
    }
    return page("dead_letters.html", **context)
