"""Dead letters a page at a time, by rank in the index: page N is the right letters, and a
filtered page goes on where the one before stopped."""

from __future__ import annotations

from tests.support.deadletters import dead_letter as letter
from worker.store.deadletters import DeadLetters, Selection, dead_letter_page
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


def test_a_record_that_does_not_parse_hides_no_other(redis_client):
    """A record Redis holds that is not a dead letter (not JSON, a list, a field missing) is
    left out of the page, the list and a lookup; the letters around it are all there."""
    letters = [letter(n) for n in range(6)]
    Restore(redis_client, KEYS).put_back(letters)
    broken = {letters[1].id: "not json", letters[3].id: "[1, 2]", letters[4].id: '{"id": "x"}'}
    for job_id, text in broken.items():
        redis_client.set(KEYS.dead_letter(job_id), text)
    whole = [r.id for r in letters if r.id not in broken]

    page = dead_letter_page(redis_client, KEYS, start_rank=0, size=50)
    assert [r.id for r in page.records] == whole
    filtered = dead_letter_page(redis_client, KEYS, start_rank=0, size=50, code=letters[0].code)
    assert [r.id for r in filtered.records] == whole
    store = DeadLetters(redis_client, KEYS, retention_s=60)
    assert [r.id for r in store.select(Selection())] == whole
    assert store.get(letters[1].id) is None
