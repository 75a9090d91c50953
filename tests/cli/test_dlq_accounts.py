"""The dead-letter commands with several accounts: `--account` picks one account's letters."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_cli import run
from tests.support.jobs import park
from tests.support.messages import text
from worker.service.runtime import Runtime
from worker.settings import Settings
from worker.store.states import JobState

pytestmark = pytest.mark.processes  # every test here runs the console script


def test_list_export_replay_and_purge_take_one_accounts_letters(redis_url, tmp_path):
    """3 of brand_a and 2 of brand_b parked: each command with --account touches only its own."""
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(
        '[accounts.brand_a]\napi_key_env = "A_KEY"\n[accounts.brand_b]\napi_key_env = "B_KEY"\n'
    )
    runtime = Runtime(Settings(broker_url=redis_url, accounts_file=accounts, _env_file=None))
    try:
        ids = {
            account: runtime.producer.enqueue_many(
                [{"message": text(i), "account": account} for i in range(count)]
            )
            for account, count in (("brand_a", 3), ("brand_b", 2))
        }
        for job_id in ids["brand_a"] + ids["brand_b"]:
            park(runtime, job_id)

        def dlq(*args):
            code, out, err = run(redis_url, "dlq", *args, accounts_file=str(accounts))
            assert code == 0, err
            return out

        listed = [
            json.loads(line) for line in dlq("list", "--account", "brand_a", "--json").splitlines()
        ]
        assert sorted(r["id"] for r in listed) == sorted(ids["brand_a"])
        exported = dlq("export", "--account", "brand_b").splitlines()
        assert sorted(json.loads(line)["id"] for line in exported) == sorted(ids["brand_b"])
        dlq("replay", "--account", "brand_b", "--all")
        pending = {JobState.QUEUED, JobState.SCHEDULED}  # paced: back on the schedule
        assert {runtime.jobs.get(i).state for i in ids["brand_b"]} <= pending
        assert {runtime.jobs.get(i).state for i in ids["brand_a"]} == {JobState.PARKED}
        dlq("purge", "--account", "brand_a", "--all", "--yes")
        assert runtime.dead_letters.counts() == {}
        code, _, err = run(
            redis_url, "dlq", "list", "--account", "brand_c", accounts_file=str(accounts)
        )
        assert code == 2
        assert "unknown account 'brand_c' (known: brand_a, brand_b)" in err
    finally:
        runtime.close()
