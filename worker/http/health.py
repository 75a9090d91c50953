"""Liveness and readiness: alive whatever Redis does; ready while Redis answers."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from worker.http.problems import RETRY_AFTER_S
from worker.http.schemas import RETRY_AFTER, Ok, Problem, Ready

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    operation_id="healthz",
    summary="The process answers (Redis is not asked)",
    responses={200: {"model": Ok, "description": "Alive"}},
)
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="Redis answers within REDIS_TIMEOUT_S",
    responses={
        200: {"model": Ready, "description": "Ready"},
        503: {
            "model": Problem,
            "description": "Redis does not answer",
            "headers": {"Retry-After": RETRY_AFTER},
        },
    },
)
async def readyz(request: Request) -> JSONResponse:
    if await request.app.state.producer.ready():
        return JSONResponse({"status": "ready"})
    return JSONResponse(
        {"error": "Redis does not answer"}, 503, headers={"Retry-After": str(RETRY_AFTER_S)}
    )
