"""The web console at /console: what the night shift needs without a terminal.

Overview per account (with a chart of the last 15 minutes and each incident's next step), the
jobs behind each count, the dead-letter queue (filter, page, open, replay, purge), job lookup,
halt and resume. Pages are rendered on the server; the only state a browser holds is the
session cookie. Replay, purge, halt and resume are the CLI's own operations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter

from worker.http.console import actions, pages
from worker.http.console.auth import Password, Sessions
from worker.http.console.brake import LoginBrake
from worker.http.console.chartdata import ChartSampler
from worker.http.console.components import Console
from worker.http.console.render import ConsoleHeaders, ConsoleRoute
from worker.http.console.replays import Replays
from worker.service.runtime import Runtime
from worker.settings import CookieSecure, Settings

__all__ = ["ConsoleHeaders", "build_router"]


def build_router(settings: Settings) -> APIRouter:
    """The console's routes (only mounted when CONSOLE_PASSWORD is set)."""
    runtime = Runtime(settings, fail_fast=True)
    password = Password(settings.console_password.get_secret_value())
    console = Console(
        runtime=runtime,
        password=password,
        sessions=Sessions(runtime.redis, runtime.keys, password),
        brake=LoginBrake(runtime.redis, runtime.keys),
        replays=Replays(runtime.redis, runtime.keys, runtime.dead_letters),
        chart=ChartSampler(runtime.redis, runtime.keys),
        always_secure=settings.cookie_secure is CookieSecure.ALWAYS,
    )

    @asynccontextmanager
    async def folding_the_chart(_app: Any) -> AsyncIterator[None]:
        """The chart's figures are folded while the service serves, not whenever an app is
        built (a test's, a tool's)."""
        console.chart.start()
        try:
            yield
        finally:
            console.chart.stop()

    router = APIRouter(
        prefix="/console",
        route_class=ConsoleRoute,
        include_in_schema=False,
        lifespan=folding_the_chart,
    )
    pages.add_pages(router, console)
    actions.add_actions(router, console)
    return router
