"""worker/urls.py and the settings that use it: the Sentinel URL form read, masked, mapped to
kombu's; a wrong form refused with one line naming the variable."""

import pytest

from tests.support.environment import clean_environment  # noqa: F401 - autouse
from worker.errors import ConfigError
from worker.service.app import create_app
from worker.settings import Settings, get_settings, mask_url
from worker.urls import BrokerKind, StoreKind, broker_kind, parse_sentinel, store_kind

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
