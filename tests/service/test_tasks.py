"""The tasks' reading of a dispatch: the address a pump of this release sends with each job, or
none from an older pump's message (the worker then reads it)."""

from __future__ import annotations

from worker.service.tasks import address_of
from worker.store.claims import Address


def test_a_dispatch_with_an_address_gives_it_and_an_older_one_gives_none():
    assert address_of(["a", "login-7", "high"]) == Address("a", "login-7", "high")
    assert address_of(["", "", ""]) == Address("", "", "")  # a job gone when the pump took it
    assert address_of([]) is None  # [id, gen] from an older pump
