"""``POST /webhooks/gateway``: the Gateway's delivery-status webhooks, applied to their jobs, and
Meta's template reviews, applied to the template holds of their account.

The Bearer secret is compared in constant time (401 otherwise); the body is at most 1 MiB (413)
and one JSON document (400), read strictly (400 for a malformed status). Every request that
passes is answered 200: a wamid no job knows included (counted ``unmatched``; its statuses are
kept a while in case the send's answer is recorded later, for a bounded number of wamids), and a
``failed`` for a message already delivered, which changes nothing (counted ``out_of_order``). The
statuses of one request are applied in one Redis round trip; Redis not answering is a 503, so
the Gateway sends it again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from fastapi import APIRouter
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse

from worker.http import problems
from worker.http.auth import WEBHOOK_SCHEME, BearerTokens, requires
from worker.http.body import MIB, read_json
from worker.http.metrics import HttpMetrics
from worker.http.schemas import UNAUTHORIZED, UNAVAILABLE, Errors, Ok, Problem
from worker.http.template_events import TemplateEvents, TemplateReview, read_template_events
from worker.http.webhook_payload import BadWebhook, ReadStatus, read_statuses
from worker.logs import get_logger
from worker.producer_async import REDIS_DOWN
from worker.send.receipt_rules import ReceiptRules
from worker.send.routing import counted_undelivered_codes
from worker.store.receipts import Applied, ReceiptOutcome, ReceiptStatus, ReceiptStore

log = get_logger(__name__)
WEBHOOK_MAX_BYTES = MIB
OTHER = "OTHER"


class Webhooks:
    """The endpoint's collaborators: the secret, the store, the routing, the metrics and the
    template holds."""

    def __init__(
        self,
        secret: str,
        store: ReceiptStore,
        rules: ReceiptRules,
        metrics: HttpMetrics,
        accounts: Iterable[str],
        templates: TemplateEvents,
    ) -> None:
        self.auth = BearerTokens((secret,))
        self.store = store
        self.rules = rules
        self.metrics = metrics
        self.accounts = frozenset(accounts)
        self.codes = counted_undelivered_codes(rules.routing)
        self.templates = templates

    async def handle(self, request: Request) -> JSONResponse:
        try:
            self.auth(request)
            body = await read_json(request, limit=WEBHOOK_MAX_BYTES)
            statuses = read_statuses(body, self.rules)
            events = read_template_events(body)
        except problems.Unauthorized as exc:
            log.warning("webhook.unauthorized")
            return self._answer("unauthorized", exc.response())
        except problems.BodyTooLarge as exc:
            return self._answer("too_large", exc.response())
        except problems.NotJSON as exc:
            return self._answer("bad_request", exc.response())
        except BadWebhook as exc:
            log.warning("webhook.malformed", field=exc.field)
            errors = [{"field": exc.field, "error": str(exc).partition(": ")[2]}]
            return self._answer("bad_request", JSONResponse({"errors": errors}, 400))
        try:
            applying = await self.store.apply([s.update for s in statuses], now=time.time())
            await self._apply_events(events)
        except (RedisError, *REDIS_DOWN):
            log.warning("webhook.redis_unavailable", statuses=len(statuses), events=len(events))
            return self._answer("unavailable", problems.RedisUnavailable().response())
        if applying.dropped:
            self.metrics.unmatched_dropped.inc(applying.dropped)
            log.warning("webhook.unmatched_dropped", wamids=applying.dropped)
        result = self._count(statuses, applying.results)
        return self._answer(result, JSONResponse({"status": "ok"}))

    async def _apply_events(self, events: list[TemplateReview]) -> None:
        """Each template review applied, in order (a hold then a release of one template leaves
        it released); each is safe to apply again when the Gateway retries the request."""
        for event in events:
            self.metrics.template_events.labels((await self.templates.apply(event)).value).inc()

    def _answer(self, result: str, response: JSONResponse) -> JSONResponse:
        self.metrics.webhooks.labels(result).inc()
        return response

    def _count(self, statuses: list[ReadStatus], results: list[ReceiptOutcome]) -> str:
        """Metrics and logs of what each status came to; returns the request's result: the
        first of out_of_order, unmatched and ok that one of its statuses came to."""
        seen = {result.applied for result in results}
        for read, result in zip(statuses, results, strict=True):
            update = read.update
            if result.applied is Applied.OUT_OF_ORDER:
                log.warning("delivery.out_of_order", wamid=update.wamid, account=result.account)
                continue
            if result.applied is not Applied.APPLIED:
                continue
            account = result.account if result.account in self.accounts else OTHER
            self.metrics.delivery_statuses.labels(account, update.status.value).inc()
            if result.delivered_after_s is not None:
                self.metrics.delivery_seconds.observe(result.delivered_after_s)
            if update.status is ReceiptStatus.FAILED:
                label = update.code if update.code in self.codes else OTHER
                self.metrics.delivery_failures.labels(account, label).inc()
                log.warning(
                    "delivery.failed",
                    wamid=update.wamid,
                    account=result.account,
                    code=update.code,
                    action=update.action,
                    recipient_id=read.recipient,
                )
        for applied in (Applied.OUT_OF_ORDER, Applied.UNMATCHED):
            if applied in seen:
                return applied.value
        return "ok"


def build_router(webhooks: Webhooks) -> APIRouter:
    """The webhook route, bound to its collaborators."""
    router = APIRouter(tags=["webhooks"])

    @router.post(
        "/webhooks/gateway",
        operation_id="gatewayWebhook",
        summary="Delivery statuses from the Gateway (Meta's WhatsApp Cloud API webhook shape)",
        openapi_extra={
            **requires(WEBHOOK_SCHEME),
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "description": (
                                "Meta's webhook object: statuses in "
                                "entry[].changes[].value.statuses[], template reviews as "
                                "changes of field message_template_status_update; anything "
                                "else is acknowledged and ignored"
                            ),
                        }
                    }
                },
            },
        },
        responses={
            200: {"model": Ok, "description": "Applied (or acknowledged: a status no job knows)"},
            400: {"model": Errors, "description": "Not JSON, or a malformed status (its field)"},
            **UNAUTHORIZED,
            413: {"model": Problem, "description": "The body exceeds 1 MiB"},
            **UNAVAILABLE,
        },
    )
    async def gateway(request: Request) -> JSONResponse:
        return await webhooks.handle(request)

    return router
