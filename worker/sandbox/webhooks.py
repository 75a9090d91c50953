"""The sandbox's status webhooks: what the Gateway forwards from WhatsApp for accepted messages.

Each accepted message gets ``sent``, then ``delivered``, then ``read`` (or ``failed`` with error
131026 for a recipient on ``failing_recipients``), each posted in Meta's Cloud API shape with
``Authorization: Bearer <webhook_secret>`` at its delay after acceptance. A post that fails is
tried again a few times; what became of them all is counted for ``GET /sandbox/webhooks``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import aiohttp

from worker.sandbox.config import SandboxConfig

ATTEMPTS = 5
RETRY_S = 0.2
TIMEOUT_S = 10
UNDELIVERABLE = {
    "code": 131026,
    "title": "Message undeliverable",
    "message": "Message undeliverable",
    "error_data": {"details": "Message failed to send because of an unknown error."},
}


def status_body(wamid: str, status: str, recipient: str, at: float) -> dict[str, Any]:
    """One status in the shape the Gateway forwards."""
    item: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(int(at)),
        "recipient_id": recipient,
    }
    if status == "failed":
        item["errors"] = [UNDELIVERABLE]
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

    def accepted(self, config: SandboxConfig, wamid: str, recipient: str) -> None:
        """Schedule the statuses of a message just accepted (nothing without a webhook URL)."""
        if not config.webhook_url or self._session is None:
            return
        task = asyncio.get_running_loop().create_task(self._play(config, wamid, recipient))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _play(self, config: SandboxConfig, wamid: str, recipient: str) -> None:
        accepted_at = time.time()
        steps = [("sent", config.webhook_sent_s)]
        if recipient in config.failing_recipients:
            steps.append(("failed", config.webhook_delivered_s))
        else:
            steps += [("delivered", config.webhook_delivered_s), ("read", config.webhook_read_s)]
        elapsed = 0.0
        for status, after_s in steps:
            await asyncio.sleep(max(0.0, after_s - elapsed))
            elapsed = max(elapsed, after_s)
            await self._post(config, status_body(wamid, status, recipient, accepted_at + elapsed))

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
