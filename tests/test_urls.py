"""worker/urls.py and the settings that use it: the Sentinel URL form read, masked, mapped to
kombu's; the Cluster form read and masked, refused as the broker; a wrong form refused with one
line naming the variable."""

import pytest

from tests.support.environment import clean_environment  # noqa: F401 - autouse
from worker.errors import ConfigError
from worker.service.app import create_app
from worker.settings import Settings, get_settings, mask_url
from worker.urls import (
    BrokerKind,
    StoreKind,
    broker_kind,
    parse_cluster,
    parse_sentinel,
    store_kind,
)

SENTINELS_PASSWORD = "sentinel-pw"  # noqa: S105 - a test's own
URL = "redis+sentinel://:s%40cret@10.0.0.1:26379,[::1]:26380,sentinel-c/primary-a/3"


def test_a_sentinel_url_is_read_into_sentinels_service_database_and_password():
    """Hosts with and without ports (26379 by default), IPv6, the service, the db, the password."""
    where = parse_sentinel(URL)
    assert where.sentinels == (("10.0.0.1", 26379), ("::1", 26380), ("sentinel-c", 26379))
    assert (where.service, where.db, where.password) == ("primary-a", 3, "s@cret")
    assert parse_sentinel("redis+sentinel://h:1/svc").db == 0


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+sentinel://h:1", "names no service"),
        ("redis+sentinel://h:1/", "names no service"),
        ("redis+sentinel://h:1/svc/x", "database that is not a number"),
        ("redis+sentinel://h:99999/svc", "not a port number"),
        ("redis+sentinel://:1/svc", "without a host"),
        ("redis+sentinel://h:1/svc?password=p", "no query"),
        ("sentinel://h:1;sentinel://h:2", "Sentinel is given as redis+sentinel://"),
    ],
)
@pytest.mark.parametrize("variable", ["REDIS_URL", "BROKER_URL"])
def test_a_wrong_sentinel_url_is_one_line_naming_the_variable(monkeypatch, variable, url, problem):
    """kombu's own sentinel:// form and broken forms are refused before anything connects."""
    monkeypatch.setenv(f"MSGWORKER_{variable}", url)
    with pytest.raises(ConfigError) as refused:
        get_settings()
    message = str(refused.value)
    assert message.startswith("invalid settings: "), message
    assert f"MSGWORKER_{variable}: " in message
    assert problem in message
    assert "\n" not in message


def test_the_masked_sentinel_url_keeps_the_hosts_and_hides_the_password():
    """Logs and errors show where the sentinels are, never the password."""
    assert mask_url(URL) == (
        "redis+sentinel://:***@10.0.0.1:26379,[::1]:26380,sentinel-c:26379/primary-a/3"
    )
    assert mask_url("redis+sentinel://user:pw@h:1/svc") == "redis+sentinel://***:***@h:1/svc/0"
    assert "pw" not in mask_url("redis+sentinel://:pw@h:1/svc/x")


def test_the_broker_follows_a_sentinel_store_when_broker_url_is_unset(monkeypatch):
    """REDIS_URL alone: the dispatches go through the same Sentinel-managed primary."""
    monkeypatch.setenv("MSGWORKER_REDIS_URL", URL)
    settings = get_settings()
    assert settings.broker_url == settings.state_url == URL
    assert store_kind(settings.state_url) is StoreKind.SENTINEL


def test_a_sentinel_broker_becomes_kombus_sentinel_transport_with_the_primarys_name():
    """kombu gets its sentinel:// list, the service as master_name and the sentinels' password."""
    settings = Settings(broker_url=URL, redis_sentinel_password=SENTINELS_PASSWORD, _env_file=None)
    app = create_app(settings)
    connection = app.connection_for_write()
    assert connection.as_uri(include_password=True).startswith("sentinel://:s%40cret@10.0.0.1:")
    assert connection.alt[1:] == ["sentinel://[::1]:26380", "sentinel://sentinel-c:26379"]
    options = app.conf.broker_transport_options
    assert options["master_name"] == "primary-a"
    assert options["sentinel_kwargs"]["password"] == SENTINELS_PASSWORD
    assert app.conf.broker_transport.endswith(":SentinelTransport")


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("redis://h/0", BrokerKind.REDIS),
        ("rediss://h/0", BrokerKind.REDIS),
        (URL, BrokerKind.SENTINEL),
        ("amqp://guest@h//", BrokerKind.RABBITMQ),
        ("amqps://guest@h//", BrokerKind.RABBITMQ),
    ],
)
def test_the_broker_kind_follows_the_scheme(url, kind):
    """Status says which engine carries the dispatches."""
    assert broker_kind(url) is kind


CLUSTER = "redis+cluster://:p%40ss@10.0.0.1:7000,[::1]:7001,node-c"


def test_a_cluster_url_is_read_into_its_nodes_and_password():
    """Nodes with and without ports (6379 by default), IPv6, the password; no database."""
    where = parse_cluster(CLUSTER)
    assert where.nodes == (("10.0.0.1", 7000), ("::1", 7001), ("node-c", 6379))
    assert (where.username, where.password) == (None, "p@ss")
    assert parse_cluster("redis+cluster://h:1/0").nodes == (("h", 1),)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+cluster://h:1/3", "names a database, and a cluster has only database 0"),
        ("redis+cluster://h:99999", "has a node port that is not a port number"),
        ("redis+cluster://:1", "names a node without a host"),
        ("redis+cluster://", "names a node without a host"),
        ("redis+cluster://h:1,,h:2", "names a node without a host"),
        ("redis+cluster://h:1?password=p", "takes no query"),
    ],
)
def test_a_wrong_cluster_url_is_one_line_naming_redis_url(monkeypatch, url, problem):
    """A broken cluster URL is refused before anything connects, saying the form."""
    monkeypatch.setenv("MSGWORKER_REDIS_URL", url)
    with pytest.raises(ConfigError) as refused:
        get_settings()
    message = str(refused.value)
    assert message.startswith("invalid settings: "), message
    assert f"MSGWORKER_REDIS_URL: {problem}" in message
    assert "redis+cluster://[:PASSWORD@]HOST:PORT[,HOST:PORT...]" in message
    assert "\n" not in message


def test_a_cluster_as_broker_url_is_refused_saying_kombu_has_no_transport(monkeypatch):
    """The dispatches cannot go through a cluster: RabbitMQ or a plain or Sentinel Redis."""
    monkeypatch.setenv("MSGWORKER_REDIS_URL", CLUSTER)
    monkeypatch.setenv("MSGWORKER_BROKER_URL", "redis+cluster://h:7000")
    with pytest.raises(ConfigError) as refused:
        get_settings()
    message = str(refused.value)
    assert message.startswith("invalid settings: MSGWORKER_BROKER_URL: kombu has no Redis Cluster")
    assert "\n" not in message


def test_a_cluster_store_without_broker_url_has_no_broker(monkeypatch):
    """REDIS_URL a cluster and BROKER_URL unset: no broker (a worker refuses, exit 78); with
    one given, the cluster keeps the state and the broker carries the dispatches."""
    monkeypatch.setenv("MSGWORKER_REDIS_URL", CLUSTER)
    alone = get_settings()
    assert store_kind(alone.state_url) is StoreKind.CLUSTER
    assert not alone.has_broker
    with pytest.raises(ConfigError, match="BROKER_URL must be set on Redis Cluster"):
        create_app(alone)
    monkeypatch.setenv("MSGWORKER_BROKER_URL", "amqp://guest@h//")
    paired = get_settings()
    assert paired.has_broker
    assert (paired.state_url, broker_kind(paired.broker_url)) == (CLUSTER, BrokerKind.RABBITMQ)


def test_the_masked_cluster_url_keeps_the_nodes_and_hides_the_password():
    """Logs and errors show where the nodes are, never the password."""
    assert mask_url(CLUSTER) == "redis+cluster://:***@10.0.0.1:7000,[::1]:7001,node-c:6379"
    assert mask_url("redis+cluster://user:pw@h:1") == "redis+cluster://***:***@h:1"
    assert "pw" not in mask_url("redis+cluster://:pw@h:1/9")
