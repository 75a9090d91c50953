"""The leak search the security tests use (tests/support/secrets.py) finds a key where DUMP's
compression hides it, and pieces of it as well as the whole."""

from __future__ import annotations

import json

from tests.support.secrets import fragments, leaked, secrets_in_redis

KEY = "sk_live_9f8e7d6c5b4a39281706"


def test_dump_can_hide_a_key_that_the_value_search_finds(redis_client):
    """In a long repetitive JSON string DUMP compresses the key's bytes apart; read as a value,
    every kind of key (string, hash, list, zset) shows it."""
    record = json.dumps({"description": f"{KEY} " * 3 + "x" * 200, "params": {"echo": KEY * 2}})
    redis_client.set("dlq:record:1", record)
    redis_client.hset("job:1", mapping={"error": f"bad key {KEY}"})
    redis_client.rpush("statuses:1", f"Bearer {KEY}")
    redis_client.zadd("index", {KEY: 1})
    redis_client.set("clean", "nothing to see " * 10)
    assert KEY.encode() not in (redis_client.dump("dlq:record:1") or b"")
    assert secrets_in_redis(redis_client, KEY) == ["dlq:record:1", "index", "job:1", "statuses:1"]


def test_a_piece_of_the_key_counts_as_a_leak():
    """Eight characters of the key anywhere (case aside) is a leak; the rest of the text is not."""
    assert leaked(f"...{KEY[5:13].upper()}...", KEY)
    assert not leaked(f"{KEY[:7]} and {KEY[-7:]}", KEY)
    assert len(fragments(KEY)) == len(KEY) - 7
