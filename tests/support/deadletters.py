"""Dead letters as a worker parks them, made without sending: for tests and benchmarks that
need many (written with the product's own import path, ``Restore.put_back``)."""

from __future__ import annotations

import uuid

from worker.store.deadletters import DeadLetter

T0 = 1_790_000_000.0


def dead_letter(
    n: int, *, code: str = "BILL_001", account: str = "default", per_s: float = 1.0
) -> DeadLetter:
    """The n-th of a run parked ``per_s`` a second from T0 (a BILL_001 outage at 80/s: 80)."""
    return DeadLetter(
        id=uuid.UUID(int=n + 1).hex,
        idempotency_key=f"invoice-{n}",
        account=account,
        message={"to": "905321234567", "type": "text", "text": {"body": f"invoice {n} is ready"}},
        code=code,
        group="BILLING",
        status=402,
        description="Insufficient balance",
        params={},
        reason="billing",
        attempts=1,
        enqueued_at=T0 + n / per_s,
        parked_at=T0 + n / per_s,
    )
