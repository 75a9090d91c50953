"""Liveness and readiness: alive whatever Redis does; ready while Redis answers."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from worker.http.schemas import Problem

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process answers (Redis is not asked)")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get(
    "/readyz",
    summary="Redis answers within REDIS_TIMEOUT_S",
    responses={503: {"model": Problem, "description": "Redis does not answer"}},
)
async def readyz(request: Request) -> JSONResponse:
    if await request.app.state.producer.ready():
        return JSONResponse({"status": "ready"})
    return JSONResponse({"error": "Redis does not answer"}, 503, headers={"Retry-After": "1"})
