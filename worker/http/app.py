"""The HTTP service's composition root: settings in, an ASGI app out; ``serve`` runs it.

Each part is a router. Health, readiness and metrics are always there; ingest is mounted only
when ``INGEST_TOKENS`` is set or the accounts file has ``[ingest.NAME]`` tokens, the Gateway's
webhooks only when ``WEBHOOK_SECRET`` is (else their paths answer 404). The Redis client is made
here and connects on first use, so the service starts (and says so on /readyz) while Redis is
down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from worker.accounts import Defaults, load_accounts, load_ingest_clients, template_event_accounts
from worker.http import apidocs, console, health, ingest, metrics, webhooks
from worker.http.auth import BearerTokens, Scope, scoped_tokens
from worker.http.document import build_document
from worker.http.problems import install_handlers
from worker.http.template_events import TemplateEvents
from worker.logs import configure_logging, get_logger
from worker.producer_async import async_producer_for
from worker.send.receipt_rules import ReceiptRules, receipt_times
from worker.send.routing import load_routing_table
from worker.settings import Settings, get_settings, mask_url, split_list, split_tokens
from worker.store.connect import connect_async_fail_fast
from worker.store.keys import Keys
from worker.store.receipts import ReceiptStore
from worker.store.templates import AsyncTemplateHolds

log = get_logger(__name__)


def create_app(settings: Settings, scoped: list[tuple[str, Scope]] | None = None) -> FastAPI:
    """The service for these settings; nothing is connected until a request needs Redis.
    ``scoped``: the ``[ingest.NAME]`` tokens as read at start (read now when not given)."""
    client = connect_async_fail_fast(
        settings.state_url,
        timeout_s=settings.redis_timeout_s,
        sentinel_password=settings.sentinel_password,
    )
    producer = async_producer_for(settings, client)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app = FastAPI(
        title="msgworker",
        summary="Enqueue WhatsApp messages for delivery through the Connexease Gateway.",
        version=_version(),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # A path that names nothing is a 404, never a redirect to a guess (/v1/jobs/x/).
        redirect_slashes=False,
    )
    app.state.producer = producer
    app.state.metrics = metrics.HttpMetrics()
    install_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    apidocs.install(app)
    tokens = split_tokens(settings.ingest_tokens)
    scoped = ingest_scoped_tokens(settings) if scoped is None else scoped
    if tokens or scoped:
        app.include_router(ingest.build_router(BearerTokens(tokens, scoped=scoped)))
    if settings.console_password.get_secret_value():
        app.include_router(console.build_router(settings))
        app.add_middleware(console.ConsoleHeaders)
    if secret := settings.webhook_secret.get_secret_value():
        delivery = load_routing_table(settings.routing_file).delivery
        rules = ReceiptRules(delivery, receipt_times(settings))
        keys = Keys(settings.redis_prefix)
        store = ReceiptStore(client, keys)
        accounts = load_accounts(settings.accounts_file, Defaults())
        templates = TemplateEvents(
            AsyncTemplateHolds(client, keys), template_event_accounts(accounts)
        )
        hooks = webhooks.Webhooks(
            secret, store, rules, app.state.metrics, producer.accounts, templates
        )
        app.include_router(webhooks.build_router(hooks))
    app.add_middleware(metrics.CountRequests, metrics=app.state.metrics)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        app.openapi_schema = build_document(app)
    return app.openapi_schema


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("msgworker")
    except PackageNotFoundError:
        return "0+unknown"


def app_from_environment() -> FastAPI:
    """The uvicorn factory: settings from the environment, logging configured, secrets scrubbed."""
    settings = get_settings()
    scoped = ingest_scoped_tokens(settings)
    secrets = [
        *split_tokens(settings.ingest_tokens),
        *(token for token, _ in scoped),
        settings.api_key.get_secret_value(),
        settings.console_password.get_secret_value(),
        settings.webhook_secret.get_secret_value(),
    ]
    configure_logging(
        level=settings.log_level.value,
        json=None if settings.log_format is None else settings.log_format.value == "json",
        secrets=[secret for secret in secrets if secret],
    )
    log.info(
        "http.starting",
        redis=mask_url(settings.state_url),
        ingest=bool(split_tokens(settings.ingest_tokens) or scoped),
        webhooks=bool(settings.webhook_secret.get_secret_value()),
    )
    return create_app(settings, scoped)


def ingest_scoped_tokens(settings: Settings) -> list[tuple[str, Scope]]:
    """The accounts file's ``[ingest.NAME]`` tokens, read now (a token file is read at start
    only: a rotated one is used after a restart)."""
    clients = load_ingest_clients(settings.accounts_file)
    unscoped = split_tokens(settings.ingest_tokens)
    return scoped_tokens(clients, unscoped, source=settings.accounts_file)


def serve(*, host: str | None = None, port: int | None = None, workers: int = 1) -> None:
    """Run the service under uvicorn until SIGTERM or SIGINT (several worker processes share
    nothing but Redis)."""
    import uvicorn  # noqa: PLC0415 - the serve extra, only here

    from worker.http import connections  # noqa: PLC0415 - it imports uvicorn

    settings = get_settings()
    ingest_scoped_tokens(settings)  # a missing or weak token stops here, before uvicorn (exit 78)
    # uvicorn would believe X-Forwarded-* from 127.0.0.1 unless told: trust only those named.
    proxies = split_list(settings.forwarded_allow_ips)
    open_files = connections.raise_open_files_limit(settings.serve_max_connections)
    if open_files < settings.serve_max_connections + connections.SPARE_FILES:
        log.warning(
            "http.open_files_below_connections",
            open_files=open_files,
            max_connections=settings.serve_max_connections,
        )
    uvicorn.run(
        "worker.http.app:app_from_environment",
        factory=True,
        host=host or settings.serve_host,
        port=settings.serve_port if port is None else port,
        workers=workers,
        http=connections.GuardedHttpToolsProtocol,
        limit_concurrency=settings.serve_max_connections,
        timeout_keep_alive=connections.IDLE_TIMEOUT_S,
        access_log=False,
        log_config=None,
        server_header=False,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=list(proxies),
        timeout_graceful_shutdown=10,
    )
