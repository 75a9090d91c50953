"""The console's pages (GET): overview, dead letters, one dead letter, a replay, a job, login."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from worker.account_names import ACCOUNT_NAME
from worker.http.console.chart import build_chart
from worker.http.console.chartdata import read_buckets
from worker.http.console.components import Console
from worker.http.console.jobtext import collapse_waits, delivery_error_text
from worker.http.console.listings import TITLES, Listing, job_page
from worker.http.console.login import login_page
from worker.http.console.nextsteps import next_steps
from worker.http.console.render import HERE, Refused, page
from worker.http.console.runbooks import SECTIONS
from worker.logs import mask_phone
from worker.observe.incidents import Runbook
from worker.observe.status import accounts_to_report
from worker.observe.views import dead_letter_view, job_view, limits_view
from worker.store.deadletters import dead_letter_page
from worker.store.drain import replay_rate
from worker.store.restore import is_job_id
from worker.store.states import JobState

PAGE_SIZE = 50
# Pages are read by rank, so any page costs one; the bounds only keep numbers sane.
PAGE_NO_MAX = 1_000_000
RANK_MAX = PAGE_NO_MAX * PAGE_SIZE
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
        now = time.time()
        steps = {name: next_steps(state, now=now) for name, state in snapshot.accounts.items()}
        templates = [
            (name, hold)
            for name, state in sorted(snapshot.accounts.items())
            for hold in state.templates_held
        ]
        return page(
            "overview.html",
            csrf=session.csrf,
            snapshot=snapshot,
            limits=limits,
            steps=steps,
            templates=templates,
            templates_runbook=Runbook.TEMPLATES,
            chart=build_chart(read_buckets(console.runtime.redis, console.runtime.keys, now=now)),
            now=now,
            nav="overview",
        )

    @router.get("/runbooks")
    def runbooks(request: Request) -> HTMLResponse:
        session = console.require(request)
        return page("runbooks.html", csrf=session.csrf, sections=SECTIONS, nav="runbooks")

    _add_dead_letter_pages(router, console)
    _add_job_and_account_pages(router, console)
    _add_job_list_page(router, console)


def _add_dead_letter_pages(router: APIRouter, console: Console) -> None:
    @router.get("/dead-letters")
    def dead_letters(
        request: Request,
        account: Annotated[str, Query(pattern=f"^(|{ACCOUNT_NAME.pattern})$")] = "",
        code: Annotated[str, Query(max_length=CODE_CHARS_MAX)] = "",
        page_no: Annotated[int, Query(ge=1, le=PAGE_NO_MAX)] = 1,
        start: Annotated[int | None, Query(ge=0, le=RANK_MAX)] = None,
        done: Done | None = None,
        n: Annotated[int, Query(ge=0, le=COUNT_MAX)] = 0,
    ) -> HTMLResponse:
        session = console.require(request)
        message = DONE[done].format(n=n) if done is not None else ""
        where = Where(account, code, page_no, start)
        return _dead_letters_page(console, session.csrf, where, message)

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
        return page(
            "replay.html",
            csrf=session.csrf,
            progress=progress,
            billing_runbook=Runbook.BILLING,
            nav="dead-letters",
        )


def _add_job_and_account_pages(router: APIRouter, console: Console) -> None:
    @router.get("/jobs")
    def job(request: Request, id: str = "") -> HTMLResponse:  # noqa: A002 - the form's name
        session = console.require(request)
        found = console.runtime.jobs.get(id) if is_job_id(id) else None
        if id and found is None:
            raise Refused(404, "No such job (sent jobs are forgotten in time).")
        if found is None:
            return page("job.html", csrf=session.csrf, job=None, asked=id, nav="jobs")
        view = job_view(found)
        delivery = view["delivery"] or {}
        # A parked job's dead letter; a job parked and then replayed or purged has none.
        parked = found.state is JobState.PARKED and console.runtime.dead_letters.get(id) is not None
        return page(
            "job.html",
            csrf=session.csrf,
            job=view,
            asked=id,
            history=collapse_waits(view["history"]),
            delivery_error=delivery_error_text(delivery.get("error")),
            dead_letter=parked,
            nav="jobs",
        )

    @router.get("/accounts/{account}/halt")
    def halt_form(request: Request, account: str) -> HTMLResponse:
        session = console.require(request)
        return page(
            "halt.html", csrf=session.csrf, account=console.account(account), nav="overview"
        )

    @router.get("/logout")
    def logout_page() -> RedirectResponse:
        return RedirectResponse("/console", 303)


def _add_job_list_page(router: APIRouter, console: Console) -> None:
    @router.get("/job-list")
    def job_list(
        request: Request,
        listing: Listing,
        account: Annotated[str, Query(pattern=f"^(|{ACCOUNT_NAME.pattern})$")] = "",
        page_no: Annotated[int, Query(ge=1, le=PAGE_NO_MAX)] = 1,
    ) -> HTMLResponse:
        session = console.require(request)
        runtime = console.runtime
        known = sorted(accounts_to_report(runtime.redis, runtime.keys, runtime.known_accounts))
        accounts = [console.account(account)] if account else known
        found = job_page(
            runtime.redis,
            runtime.keys,
            listing,
            accounts,
            start=(page_no - 1) * PAGE_SIZE,
            size=PAGE_SIZE,
            now=time.time(),
        )
        return page(
            "job_list.html",
            csrf=session.csrf,
            listing=listing,
            title=TITLES[listing],
            account=account,
            found=found,
            page_no=page_no,
            more=found.total > page_no * PAGE_SIZE,
            nav="overview",
        )


def _default_rate(console: Console) -> float:
    return replay_rate(None, console.runtime.settings.rate_per_sec)


@dataclass(frozen=True)
class Where:
    """Which page of the dead letters is asked for: a filter, a page number, and (paging on
    through a filter) the rank in the index the page starts at."""

    account: str
    code: str
    page_no: int
    start: int | None

    @property
    def filtered(self) -> bool:
        return bool(self.account or self.code)

    @property
    def start_rank(self) -> int:
        # Unfiltered, page N starts at a known rank; filtered, the "next" link says where.
        if self.start is not None:
            return self.start
        return 0 if self.filtered else (self.page_no - 1) * PAGE_SIZE


def _dead_letters_page(console: Console, csrf: str, where: Where, done: str) -> HTMLResponse:
    account, code, page_no = where.account, where.code, where.page_no
    found = dead_letter_page(
        console.runtime.redis,
        console.runtime.keys,
        start_rank=where.start_rank,
        size=PAGE_SIZE,
        account=account or None,
        code=code or None,
    )
    counts = console.runtime.dead_letters.counts()
    accounts = sorted(
        accounts_to_report(
            console.runtime.redis, console.runtime.keys, console.runtime.known_accounts
        )
    )
    context: dict[str, Any] = {
        "csrf": csrf,
        "records": found.records,
        "next_rank": found.next_rank if page_no < PAGE_NO_MAX else None,
        "page_no": page_no,
        # Only names the page knows are written back into it, never the address's own text.
        "account": account if account in accounts else "",
        "code": code if code in counts else "",
        "filtered": where.filtered,
        "codes": sorted(counts.items()),
        "accounts": accounts,
        "total": sum(counts.values()),
        "default_rate": _default_rate(console),
        "max_rate": console.runtime.settings.rate_per_sec,
        "done": done,
        "nav": "dead-letters",
    }
    return page("dead_letters.html", **context)
