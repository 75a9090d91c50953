"""Delivery statuses applied as serve's webhook applies them: one asyncio round trip a request."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio

from worker.store.delivery import Applying, DeliveryStore, StatusUpdate
from worker.store.keys import Keys


def apply_statuses(
    redis_url: str, keys: Keys, *updates: StatusUpdate, now: float | None = None
) -> Applying:
    """What became of ``updates``, applied in one request's round trip."""

    async def run() -> Applying:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            store = DeliveryStore(client, keys)
            return await store.apply(list(updates), now=now or time.time())
        finally:
            await client.aclose()

    return asyncio.run(run())
