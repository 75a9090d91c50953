"""Dead letters a page at a time, by rank in the index: page N is the right letters, and a
filtered page goes on where the one before stopped."""

from __future__ import annotations

from tests.support.deadletters import dead_letter as letter
from worker.store.deadletters import dead_letter_page
from worker.store.keys import Keys
from worker.store.restore import Restore

KEYS = Keys("pages:")


def test_page_n_is_the_letters_at_its_ranks(redis_client):
    """Page 7 of 50 a page is the 301st to 350th letter by parked time, and says where the
    next starts; the last page says nothing follows."""
    letters = [letter(n) for n in range(1_000)]
    Restore(redis_client, KEYS).put_back(letters[::-1])  # written newest first: order by time

    page = dead_letter_page(redis_client, KEYS, start_rank=300, size=50)
    assert [r.id for r in page.records] == [r.id for r in letters[300:350]]
    assert page.next_rank == 350

    last = dead_letter_page(redis_client, KEYS, start_rank=950, size=50)
    assert [r.id for r in last.records] == [r.id for r in letters[950:]]
    assert last.next_rank is None


def test_a_filtered_page_goes_on_from_where_the_last_stopped(redis_client):
    """Every third letter AUTH_001 of account otp: pages of 10 of that filter, followed by their
    next ranks, give each match once, in order."""
    letters = [
        letter(n, code="AUTH_001", account="otp") if n % 3 == 0 else letter(n) for n in range(200)
    ]
    Restore(redis_client, KEYS).put_back(letters)
    wanted = [r.id for r in letters if r.code == "AUTH_001"]

    seen: list[str] = []
    rank: int | None = 0
    while rank is not None:
        page = dead_letter_page(
            redis_client, KEYS, start_rank=rank, size=10, account="otp", code="AUTH_001"
        )
        assert len(page.records) <= 10
        seen += [r.id for r in page.records]
        rank = page.next_rank
    assert seen == wanted


def test_a_filter_reads_no_further_than_its_bound(redis_client):
    """A filter that matches nothing reads at most ``read_max`` records and says where to go on."""
    Restore(redis_client, KEYS).put_back([letter(n) for n in range(500)])
    page = dead_letter_page(redis_client, KEYS, start_rank=0, size=10, code="GW_001", read_max=200)
    assert page.records == []
    assert page.next_rank == 200
