"""Settings: every documented variable with its default; a bad value is one line naming it."""

from pathlib import Path

import pytest

from tests.support.environment import clean_environment  # noqa: F401 - autouse
from worker.errors import ConfigError
from worker.service.runtime import Runtime
from worker.settings import Settings, get_settings, known_variables, mask_url

DEFAULTS = {
    "api_base_url": "https://api.gateway.connexease.com/",
    "broker_url": "redis://localhost:6379/0",
    "redis_url": None,
    "queue": "messages",
    "sandbox": False,
    "rate_per_sec": 80,
    "rate_per_min": 4800,
    "max_attempts": 8,
    "backoff_base_s": 2.0,
    "backoff_cap_s": 300.0,
    "http_timeout_s": 10.0,
    "metrics_port": 9808,
    "alert_webhook_url": None,
    "alertmanager_url": None,
    "visibility_timeout_s": 3600,
    "log_level": "INFO",
    "log_format": None,
}


def test_defaults_match_the_spec():
    """With nothing set, each variable has its documented default."""
    settings = get_settings()
    for name, value in DEFAULTS.items():
        actual = getattr(settings, name)
        assert (str(actual) if name == "api_base_url" else actual) == value, name
    assert settings.api_key.get_secret_value() == ""
    assert settings.state_url == "redis://localhost:6379/0"


def test_environment_overrides_with_prefix(monkeypatch):
    """MSGWORKER_* variables set the values, converted to their types."""
    monkeypatch.setenv("MSGWORKER_RATE_PER_SEC", "40")
    monkeypatch.setenv("MSGWORKER_SANDBOX", "true")
    monkeypatch.setenv("MSGWORKER_REDIS_URL", "redis://state:6379/1")
    monkeypatch.setenv("MSGWORKER_LOG_FORMAT", "console")
    settings = get_settings()
    assert (settings.rate_per_sec, settings.sandbox) == (40, True)
    assert settings.state_url == "redis://state:6379/1"
    assert settings.log_format == "console"


def test_dotenv_file_is_read(tmp_path):
    """A .env file in the working directory is honoured."""
    (tmp_path / ".env").write_text("MSGWORKER_QUEUE=urgent\n")
    assert get_settings().queue == "urgent"


def test_api_key_is_a_secret(monkeypatch):
    """The key is hidden in repr and str of the settings."""
    monkeypatch.setenv("MSGWORKER_API_KEY", "sk_live_supersecret")
    settings = get_settings()
    assert settings.api_key.get_secret_value() == "sk_live_supersecret"
    assert "sk_live_supersecret" not in repr(settings)
    assert "sk_live_supersecret" not in str(settings)


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("RATE_PER_SEC", "fast", "valid integer"),
        ("RATE_PER_SEC", "0", "greater than 0"),
        ("RATE_PER_MIN", "-5", "greater than 0"),
        ("PAIR_INTERVAL_S", "-1", "greater than or equal to 0"),
        ("PAIR_INTERVAL_S", "7200", "less than or equal to 3600"),
        ("PAIR_BURST", "0", "greater than or equal to 1"),
        ("MAX_ATTEMPTS", "1.5", "valid integer"),
        ("BACKOFF_BASE_S", "soon", "valid number"),
        ("HTTP_TIMEOUT_S", "0", "greater than 0"),
        ("METRICS_PORT", "70000", "less than or equal to 65535"),
        ("SANDBOX", "perhaps", "valid boolean"),
        ("API_BASE_URL", "not a url", "URL"),
        ("ALERTMANAGER_URL", "nope", "URL"),
        ("LOG_FORMAT", "xml", "json"),
        ("LOG_LEVEL", "LOUD", "INFO"),
        ("QUEUE", "has space", "pattern"),
        ("VISIBILITY_TIMEOUT_S", "x", "valid integer"),
        ("BROKER_URL", "localhost", "not a URL"),
        ("COOKIE_SECURE", "sometimes", "'auto' or 'always'"),
        ("FORWARDED_ALLOW_IPS", "10.0.0.1,proxy.local", "'proxy.local' is not an IP address"),
        ("FORWARDED_ALLOW_IPS", "10.0.0.1/8", "is not an IP address or network"),
        ("FORWARDED_ALLOW_IPS", "*,10.0.0.1", "stands alone"),
    ],
)
def test_bad_value_is_one_line_naming_the_variable(monkeypatch, name, value, words):
    """Start-up stops with one line that names MSGWORKER_<NAME> and says what is wrong."""
    monkeypatch.setenv(f"MSGWORKER_{name}", value)
    with pytest.raises(ConfigError) as caught:
        get_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert f"MSGWORKER_{name}" in message
    assert words in message


def test_pair_pacing_is_one_message_per_recipient_every_6_s_unless_set(monkeypatch):
    """Pair pacing by default as WhatsApp's pair rate limit; 0 turns it off; the limiter gets it."""
    settings = get_settings()
    assert (settings.pair_interval_s, settings.pair_burst) == (6.0, 1)
    monkeypatch.setenv("MSGWORKER_PAIR_INTERVAL_S", "0")
    monkeypatch.setenv("MSGWORKER_PAIR_BURST", "3")
    assert Runtime(get_settings()).rate_limit.pair_arguments() == {
        "pair_interval_ms": 0,
        "pair_burst": 3,
    }


def test_forwarded_allow_ips_lists_addresses_and_networks(monkeypatch):
    """Trusted proxies: none by default; addresses and networks, v4 or v6, comma-separated."""
    assert get_settings().forwarded_allow_ips == ""
    monkeypatch.setenv("MSGWORKER_FORWARDED_ALLOW_IPS", "10.0.0.0/8, 192.168.1.5,::1")
    assert get_settings().forwarded_allow_ips == "10.0.0.0/8, 192.168.1.5,::1"


def test_bad_value_message_does_not_echo_the_input(monkeypatch):
    """A mistyped secret-bearing value is not repeated in the error."""
    monkeypatch.setenv("MSGWORKER_ALERT_WEBHOOK_URL", "sk_live_oops_pasted_key")
    with pytest.raises(ConfigError) as caught:
        get_settings()
    assert "sk_live_oops_pasted_key" not in str(caught.value)


def test_non_redis_broker_needs_a_redis_url(monkeypatch):
    """State lives in Redis: an AMQP broker without REDIS_URL is refused, naming REDIS_URL."""
    monkeypatch.setenv("MSGWORKER_BROKER_URL", "amqp://guest@localhost//")
    with pytest.raises(ConfigError, match="MSGWORKER_REDIS_URL"):
        get_settings()
    monkeypatch.setenv("MSGWORKER_REDIS_URL", "redis://localhost:6379/2")
    assert get_settings().state_url == "redis://localhost:6379/2"


def test_settings_are_frozen():
    """Components cannot change settings behind each other's backs."""
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.queue = "other"


def test_example_env_copied_as_is_gives_the_defaults(tmp_path):
    """config/example.env lists every variable; copied to .env unchanged it is valid."""
    example = Path(__file__).parents[1] / "config" / "example.env"
    (tmp_path / ".env").write_text(example.read_text())
    settings = get_settings()
    assert settings.rate_per_sec == 80
    assert settings.redis_url is None
    lines = example.read_text().splitlines()
    named = {line.split("=")[0] for line in lines if "=" in line and not line.startswith("#")}
    assert named == {f"MSGWORKER_{name.upper()}" for name in Settings.model_fields}


def test_an_unknown_variable_stops_start_up_naming_the_closest_known_one(monkeypatch):
    """A typo like MSGWORKER_RATE_PER_SECOND is refused in one line, never silently ignored."""
    monkeypatch.setenv("MSGWORKER_RATE_PER_SECOND", "20")
    with pytest.raises(ConfigError) as caught:
        get_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert "MSGWORKER_RATE_PER_SECOND" in message
    assert "did you mean MSGWORKER_RATE_PER_SEC?" in message


def test_an_unknown_variable_in_the_env_file_is_refused_too(tmp_path):
    """The .env is checked like the environment: a misspelt name there stops start-up."""
    (tmp_path / ".env").write_text("MSGWORKER_QUEUE=urgent\nMSGWORKER_BROKR_URL=redis://x:1/0\n")
    with pytest.raises(ConfigError, match="did you mean MSGWORKER_BROKER_URL"):
        get_settings()


def test_env_file_picks_the_dotenv_to_read(monkeypatch, tmp_path):
    """MSGWORKER_ENV_FILE names the .env; the working directory's .env is then not read."""
    (tmp_path / ".env").write_text("MSGWORKER_QUEUE=from_cwd\n")
    elsewhere = tmp_path / "deploy" / "prod.env"
    elsewhere.parent.mkdir()
    elsewhere.write_text("MSGWORKER_QUEUE=from_env_file\n")
    assert get_settings().queue == "from_cwd"
    monkeypatch.setenv("MSGWORKER_ENV_FILE", str(elsewhere))
    settings = get_settings()
    assert settings.queue == "from_env_file"
    assert settings.env_file == elsewhere


def test_env_file_that_does_not_exist_is_refused(monkeypatch, tmp_path):
    """A named .env that is missing is a settings error, not a silent fall-back to defaults."""
    monkeypatch.setenv("MSGWORKER_ENV_FILE", str(tmp_path / "nope.env"))
    with pytest.raises(ConfigError, match="MSGWORKER_ENV_FILE: no such file"):
        get_settings()


def test_the_known_variables_are_exactly_those_example_env_documents():
    """Settings fields and config/example.env name the same variables, each with a value line."""
    example = Path(__file__).parents[1] / "config" / "example.env"
    lines = example.read_text().splitlines()
    documented = {line.split("=")[0] for line in lines if "=" in line and not line.startswith("#")}
    assert documented == known_variables()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://127.0.0.1:2/1?password=S3cr3tQ", "redis://127.0.0.1:2/1?password=***"),
        (
            "rediss://admin:pw@cache:6380/2?ssl_cert_reqs=none",
            "rediss://***:***@cache:6380/2?ssl_cert_reqs=***",
        ),
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("unix:///run/redis.sock?db=1", "unix:///run/redis.sock?db=***"),
        ("redis://h:notaport/0", "redis://***"),
        ("not a url", "***"),
    ],
)
def test_mask_url_hides_user_password_and_query_values(url, shown):
    """A URL printed or logged keeps its scheme, host, port and path, nothing secret."""
    assert mask_url(url) == shown
