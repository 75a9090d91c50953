"""The service's own ``/metrics``: requests by route, method and status, on its own registry.

Labels stay bounded: ``route`` is the matched route's template (``/v1/jobs/{job_id}``) or
``unmatched``, ``method`` one of a fixed set, ``status`` an HTTP status code.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker.observe.build_info import BuildInfoCollector

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class HttpMetrics:
    """The service's metrics; one registry per app, so apps never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(BuildInfoCollector("serve"))
        self.requests = Counter(
            "msgworker_http_requests_total",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "msgworker_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.messages = Counter(
            "msgworker_http_messages_total",
            "Messages received by the ingest API, by result",
            ["result"],  # accepted | duplicate | invalid
            registry=self.registry,
        )
        self.webhooks = Counter(
            "msgworker_webhook_requests_total",
            "Gateway webhook requests, by result",
            # ok | unmatched | out_of_order | unauthorized | bad_request | too_large | unavailable
            ["result"],
            registry=self.registry,
        )
        self.unmatched_dropped = Counter(
            "msgworker_webhook_unmatched_dropped_total",
            "Wamids no job knows whose statuses were dropped, the oldest first, to keep 10,000",
            registry=self.registry,
        )
        self.delivery_statuses = Counter(
            "msgworker_delivery_statuses_total",
            "Delivery statuses applied to jobs (repeats and stale ones not counted)",
            ["account", "status"],
            registry=self.registry,
        )
        self.delivery_failures = Counter(
            "msgworker_delivery_failures_total",
            "Failed deliveries, by account and WhatsApp error code (WA_<code>, else OTHER)",
            ["account", "code"],
            registry=self.registry,
        )
        self.template_events = Counter(
            "msgworker_template_events_total",
            "Meta's template reviews received, by what they did",
            ["result"],  # held | released | unknown_account (ignored reviews are not counted)
            registry=self.registry,
        )
        self.delivery_seconds = Histogram(
            "msgworker_delivery_seconds",
            "Time from the Gateway accepting a message to WhatsApp delivering it",
            registry=self.registry,
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600, 21600, 86400),
        )


class CountRequests:
    """ASGI middleware: counts every answered request, whatever answered it."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            route: Any = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(
                path, method if method in METHODS else "other", str(status)
            ).inc()
            self.metrics.duration.labels(path).observe(time.perf_counter() - started)


router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics of this process",
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
