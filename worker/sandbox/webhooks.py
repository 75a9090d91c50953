"""The sandbox's webhooks: what the Gateway forwards from WhatsApp.

Each accepted message gets ``sent``, then ``delivered``, then ``read`` (or ``failed`` with Meta's
error for it: see worker.sandbox.meta), each posted in Meta's Cloud API shape with
``Authorization: Bearer <webhook_secret>`` at its delay after acceptance; template reviews are
posted when they happen. A post that fails is tried again a few times; what became of them all
is counted for ``GET /sandbox/webhooks``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Coroutine
from typing import Any

import aiohttp

from worker.sandbox.config import SandboxConfig
from worker.sandbox.meta_errors import MetaError
from worker.sandbox.replies import AcceptedMessage

ATTEMPTS = 5
RETRY_S = 0.2
TIMEOUT_S = 10


def status_body(
    wamid: str, status: str, recipient: str, at: float, error: MetaError | None = None
) -> dict[str, Any]:
    """One status in the shape the Gateway forwards."""
    item: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(int(at)),
        "recipient_id": recipient,
    }
    if status == "failed" and error is not None:  # Meta's sent status carries no errors
        item["errors"] = [error.body()]
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": "sandbox"},
        "statuses": [item],
    }
    change = {"field": "messages", "value": value}
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "sandbox", "changes": [change]}],
    }


class StatusPoster:
    """Posts the statuses of accepted messages, each on its own task in the sandbox's loop."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.counts: Counter[str] = Counter()

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def accepted(self, config: SandboxConfig, message: AcceptedMessage) -> None:
        """Schedule the statuses of a message just accepted (nothing without a webhook URL)."""
        self._start(config, self._play(config, message))

    def event(self, config: SandboxConfig, body: dict[str, Any]) -> None:
        """Post one webhook now (nothing without a webhook URL)."""
        self._start(config, self._post(config, body))

    def _start(self, config: SandboxConfig, work: Coroutine[Any, Any, None]) -> None:
        if not config.webhook_url or self._session is None:
            work.close()
            return
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _play(self, config: SandboxConfig, message: AcceptedMessage) -> None:
        accepted_at = time.time()
        steps = [("sent", config.webhook_sent_s)]
        if message.error is not None:
            steps.append(("failed", config.webhook_delivered_s))
        else:
            steps += [("delivered", config.webhook_delivered_s), ("read", config.webhook_read_s)]
        elapsed = 0.0
        for status, after_s in steps:
            await asyncio.sleep(max(0.0, after_s - elapsed))
            elapsed = max(elapsed, after_s)
            body = status_body(
                message.wamid, status, message.wa_id, accepted_at + elapsed, message.error
            )
            await self._post(config, body)

    async def _post(self, config: SandboxConfig, body: dict[str, Any]) -> None:
        assert self._session is not None  # noqa: S101 - accepted() checked it
        assert config.webhook_url is not None  # noqa: S101
        headers = {"Authorization": f"Bearer {config.webhook_secret}"}
        for attempt in range(ATTEMPTS):
            try:
                async with self._session.post(config.webhook_url, json=body, headers=headers) as r:
                    if r.status == 200:
                        self.counts["posted"] += 1
                        return
                    self.counts[f"status_{r.status}"] += 1
            except (aiohttp.ClientError, TimeoutError):
                self.counts["connection_errors"] += 1
            await asyncio.sleep(RETRY_S * (attempt + 1))
        self.counts["given_up"] += 1
