"""The console's state changes (POST): login, logout, replay, purge, halt, resume, and the
release of a held WhatsApp template.

Each one but the login checks the session and its CSRF token before anything else; a refused
request changes nothing. Replay, purge, halt, resume and the release are the CLI's own
operations.
"""

from __future__ import annotations

import math
import re
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from worker.http.console.auth import COOKIE, COOKIE_PATH
from worker.http.console.components import Console
from worker.http.console.login import log_in
from worker.http.console.pages import Done
from worker.http.console.render import Refused, first, page, read_form
from worker.logs import get_logger
from worker.models import LANGUAGE_CODE, TEMPLATE_NAME
from worker.service.operations import halt_account, release_template, resume_account
from worker.store.deadletters import Selection, leave_out_opted_out
from worker.store.drain import replay_rate
from worker.store.restore import is_job_id

log = get_logger(__name__)
REASON_MAX = 500
# Purging a whole code is confirmed on a page that lists this many of the records first.
PREVIEW = 20


def add_actions(router: APIRouter, console: Console) -> None:
    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await read_form(request)
        return await run_in_threadpool(log_in, console, request, form)

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        form = await read_form(request)
        session = await run_in_threadpool(console.authorise, request, form)
        await run_in_threadpool(console.sessions.end, session.id)
        response = RedirectResponse("/console/login", 303)
        response.delete_cookie(COOKIE, path=COOKIE_PATH)
        return response

    @router.post("/dead-letters/replay")
    async def replay(request: Request) -> Response:
        form = await read_form(request)
        return await run_in_threadpool(_replay, console, request, form)

    @router.post("/dead-letters/purge")
    async def purge(request: Request) -> Response:
        form = await read_form(request)
        return await run_in_threadpool(_purge, console, request, form)

    @router.post("/accounts/{account}/halt")
    async def halt(request: Request, account: str) -> Response:
        form = await read_form(request)
        return await run_in_threadpool(_halt, console, request, form, account)

    @router.post("/accounts/{account}/resume")
    async def resume(request: Request, account: str) -> Response:
        form = await read_form(request)
        return await run_in_threadpool(_resume, console, request, form, account)

    @router.post("/accounts/{account}/templates/release")
    async def release(request: Request, account: str) -> Response:
        form = await read_form(request)
        return await run_in_threadpool(_release_template, console, request, form, account)


def _selection(form: dict[str, list[str]]) -> Selection:
    """The dead letters a form names: ticked ids, or a whole code (of an account or all)."""
    if first(form, "scope") == "code":
        code = first(form, "code") or ""
        if not code:
            raise Refused(400, "Say which code.")
        return Selection(account=first(form, "account") or None, code=code)
    ids = tuple(i for i in form.get("id", []) if is_job_id(i))
    if not ids:
        raise Refused(400, "Tick at least one dead letter.")
    return Selection(ids=ids[:1000])


def _describe(selection: Selection) -> str:
    if selection.ids:
        return f"{len(selection.ids)} selected dead letter(s)"
    where = f" of account {selection.account}" if selection.account else ""
    return f"every {selection.code} dead letter{where}"


def _rate(console: Console, form: dict[str, list[str]]) -> float:
    text = (first(form, "rate") or "").strip()
    try:
        asked = float(text) if text else None
    except ValueError:
        raise Refused(400, "The rate is not a number.") from None
    if asked is not None and not (math.isfinite(asked) and asked > 0):
        raise Refused(400, "The rate must be a positive number of messages per second.")
    return replay_rate(asked, console.runtime.settings.rate_per_sec)


def _replay(console: Console, request: Request, form: dict[str, list[str]]) -> Response:
    console.authorise(request, form)
    selection = _selection(form)
    rate = _rate(console, form)
    records, opted_out = leave_out_opted_out(
        console.runtime.dead_letters.select(selection),
        named=bool(selection.ids),
        include_opted_out=first(form, "include_opted_out") == "yes",
    )
    what = _describe(selection)
    if opted_out:
        what += f" (leaving {opted_out} opted out of marketing)"
    ids = [record.id for record in records]
    run_id = console.replays.start(ids, rate_per_s=rate, what=what)
    return RedirectResponse(f"/console/replays/{run_id}", 303)


def _purge(console: Console, request: Request, form: dict[str, list[str]]) -> Response:
    session = console.authorise(request, form)
    selection = _selection(form)
    records = list(console.runtime.dead_letters.select(selection))
    if first(form, "confirmed") != "yes":
        return page(
            "purge.html",
            csrf=session.csrf,
            selection=selection,
            what=_describe(selection),
            count=len(records),
            preview=records[:PREVIEW],
            nav="dead-letters",
        )
    purged = console.runtime.dead_letters.purge([record.id for record in records])
    log.info("console.purged", count=purged, what=_describe(selection))
    done = urlencode({"done": Done.PURGED.value, "n": purged})
    return RedirectResponse(f"/console/dead-letters?{done}", 303)


def _halt(console: Console, request: Request, form: dict[str, list[str]], name: str) -> Response:
    console.authorise(request, form)
    account = console.account(name)
    reason = " ".join((first(form, "reason") or "").split())[:REASON_MAX]
    if not reason:
        raise Refused(400, "Say why the account is halted: the reason shows to everyone.")
    halt_account(console.runtime, account, reason=reason)
    log.info("console.halted", account=account)
    return RedirectResponse("/console", 303)


def _resume(console: Console, request: Request, form: dict[str, list[str]], name: str) -> Response:
    console.authorise(request, form)
    account = console.account(name)
    released = resume_account(console.runtime, account)
    log.info("console.resumed", account=account, released=released)
    return RedirectResponse("/console", 303)


def _release_template(
    console: Console, request: Request, form: dict[str, list[str]], name: str
) -> Response:
    console.authorise(request, form)
    account = console.account(name)
    template, language = first(form, "name") or "", first(form, "language") or ""
    if not re.match(TEMPLATE_NAME, template) or not re.match(LANGUAGE_CODE, language):
        raise Refused(400, "Say which template: its name and language, as the list shows them.")
    released = release_template(console.runtime, account, template, language)
    log.info(
        "console.template_released",
        account=account,
        template=template,
        language=language,
        released=released.jobs,
    )
    return RedirectResponse("/console", 303)
