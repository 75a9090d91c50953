"""The private redis-server the suite starts for itself."""

from tests.support.processes import redis_server_binary


def test_private_redis_server_is_not_the_machines(redis_server, redis_client):
    """Tests talk to their own redis-server on a free port, never to 6379."""
    assert redis_server.port != 6379
    assert redis_client.ping()
    assert redis_client.dbsize() == 0
    assert redis_server_binary()
