"""The accounts file: parsed and validated at start, each problem named by account and field."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.serve import TOKEN, Service
from worker.accounts import (
    Account,
    Defaults,
    known_accounts,
    load_accounts,
    load_ingest_clients,
    parse_accounts,
    template_event_accounts,
)
from worker.errors import ConfigError, InvalidMessage
from worker.service.runtime import Runtime
from worker.settings import Settings

SOURCE = Path("/etc/msgworker/accounts.toml")
DEFAULTS = Defaults(api_key="pk_default", rate_per_sec=None, rate_per_min=3000, sandbox=True)


def parse(text: str) -> dict[str, Account]:
    return parse_accounts(text, DEFAULTS, source=SOURCE)


def test_without_a_file_there_is_one_account_default_on_api_key():
    """No accounts file: the account ``default`` with API_KEY and the rate settings."""
    accounts = load_accounts(None, DEFAULTS)
    assert list(accounts) == ["default"]
    assert accounts["default"].api_key() == "pk_default"
    assert (accounts["default"].rate_per_sec, accounts["default"].rate_per_min) == (None, 3000)
    assert known_accounts(None) == frozenset({"default"})


def test_accounts_take_their_fields_or_the_settings_defaults():
    """Each account's own values win; unset ones come from the settings; order is kept."""
    accounts = parse(
        '[accounts.otp]\napi_key_env = "OTP_KEY"\nrate_per_sec = 20\nweight = 3\n'
        '[accounts.marketing]\napi_key_file = "keys/marketing"\nsandbox = false\n'
    )
    assert list(accounts) == ["otp", "marketing"]
    otp, marketing = accounts["otp"], accounts["marketing"]
    assert (otp.key_env, otp.rate_per_sec, otp.rate_per_min, otp.weight) == ("OTP_KEY", 20, 3000, 3)
    assert otp.sandbox is True
    assert marketing.key_file == SOURCE.parent / "keys" / "marketing"
    assert (marketing.sandbox, marketing.weight, marketing.rate_per_sec) == (False, 1, None)


def test_a_key_is_read_again_at_each_use_and_stripped(tmp_path):
    """A key file's surrounding whitespace goes; a rewritten file is seen at the next read."""
    key_file = tmp_path / "key"
    key_file.write_text("  sk_first\n")
    account = Account("a", key_file=key_file)
    assert account.api_key() == "sk_first"
    key_file.write_text("sk_second\n")
    assert account.api_key() == "sk_second"
    key_file.unlink()
    assert account.api_key() == ""
    assert Account("b", key_env="B_KEY").api_key({"B_KEY": "pk_b"}) == "pk_b"
    assert Account("b", key_env="B_KEY").api_key({}) == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[accounts.a]\nrate_per_sec = 5\n", "account 'a': api_key_env or api_key_file"),
        (
            '[accounts.a]\napi_key_env = "A"\napi_key_file = "/k"\n',
            "account 'a': api_key_env or api_key_file",
        ),
        ('[accounts.a]\napi_key = "pk_secret"\n', "account 'a': unknown field 'api_key'"),
        ('[accounts.a]\napi_key_env = "not a name"\n', "account 'a': api_key_env: must name"),
        ("[accounts.a]\napi_key_env = 3\n", "account 'a': api_key_env: must name"),
        ('[accounts.a]\napi_key_file = ""\n', "account 'a': api_key_file: must be a path"),
        (
            '[accounts.a]\napi_key_env = "A"\nrate_per_sec = 0\n',
            "account 'a': rate_per_sec: must be a whole number from 1 to 10000",
        ),
        (
            '[accounts.a]\napi_key_env = "A"\nrate_per_sec = 100000000\n',
            "account 'a': rate_per_sec: must be",
        ),
        (
            '[accounts.a]\napi_key_env = "A"\nrate_per_min = 1.5\n',
            "account 'a': rate_per_min: must be a whole number",
        ),
        (
            '[accounts.a]\napi_key_env = "A"\nrate_per_min = true\n',
            "account 'a': rate_per_min: must be",
        ),
        (
            '[accounts.a]\napi_key_env = "A"\nweight = -1\n',
            "account 'a': weight: must be a whole number from 1 to 1000",
        ),
        (
            '[accounts.a]\napi_key_env = "A"\nsandbox = "yes"\n',
            "account 'a': sandbox: must be true or false",
        ),
        ('[accounts."a:b"]\napi_key_env = "A"\n', "account 'a:b': the name must be 1 to 64"),
        (f'[accounts.{"x" * 65}]\napi_key_env = "A"\n', "the name must be 1 to 64"),
        ("[accounts]\na = 1\n", "account 'a': must be a table"),
        ("[accounts]\n", "no account"),
        ("[other]\n", "unknown table or key 'other'"),
        ("[accounts.a\n", "not valid TOML"),
    ],
)
def test_each_problem_is_one_line_naming_the_account_and_field(text, expected):
    """A bad accounts file is refused with one line naming the file, the account and the field."""
    with pytest.raises(ConfigError) as caught:
        parse(text)
    message = str(caught.value)
    assert message.startswith(f"accounts file {SOURCE}: ")
    assert expected in message
    assert "\n" not in message


ACCOUNT_A = '[accounts.a]\napi_key_env = "A"\n'


@pytest.mark.parametrize(
    ("ingest", "expected"),
    [
        ('accounts = ["a"]\n', "ingest 'c': token_env or token_file: give exactly one"),
        (
            'token_env = "T"\ntoken_file = "t"\naccounts = ["a"]\n',
            "ingest 'c': token_env or token_file: give exactly one",
        ),
        ('token = "tok_secret_value"\naccounts = ["a"]\n', "ingest 'c': unknown field 'token'"),
        ('token_env = "not a name"\naccounts = ["a"]\n', "ingest 'c': token_env: must name"),
        ('token_file = ""\naccounts = ["a"]\n', "ingest 'c': token_file: must be a path"),
        ('token_env = "T"\n', "ingest 'c': accounts: must be a list of one or more"),
        ('token_env = "T"\naccounts = []\n', "ingest 'c': accounts: must be a list"),
        ('token_env = "T"\naccounts = "a"\n', "ingest 'c': accounts: must be a list"),
        (
            'token_env = "T"\naccounts = ["a", "secret_b"]\n',
            "ingest 'c': accounts: entry 2 is not an [accounts.NAME] of this file",
        ),
        ('token_env = "T"\naccounts = [{x = 1}]\n', "ingest 'c': accounts: entry 1 is not"),
    ],
)
def test_each_ingest_problem_names_the_table_and_field_never_a_value(ingest, expected):
    """A bad [ingest.NAME] stops every command: one line naming the file, table and field, and
    no value from the file."""
    with pytest.raises(ConfigError) as caught:
        parse(f"{ACCOUNT_A}[ingest.c]\n{ingest}")
    message = str(caught.value)
    assert message.startswith(f"accounts file {SOURCE}: ")
    assert expected in message
    assert "tok_secret_value" not in message
    assert "secret_b" not in message
    assert "\n" not in message


def test_ingest_tables_are_read_with_their_accounts(tmp_path):
    """[ingest.NAME]: the token's source (a relative file beside the accounts file) and scope;
    the token itself is read when asked, stripped."""
    path = tmp_path / "accounts.toml"
    path.write_text(
        f'{ACCOUNT_A}[accounts.b]\napi_key_env = "B"\n'
        '[ingest.c]\ntoken_file = "c.token"\naccounts = ["a", "b"]\n'
        '[ingest.d]\ntoken_env = "D_TOKEN"\naccounts = ["b"]\n'
    )
    (tmp_path / "c.token").write_text(" tok_c_0123456789abcdef\n")
    c, d = load_ingest_clients(path)
    assert (c.name, c.accounts, c.token()) == ("c", {"a", "b"}, "tok_c_0123456789abcdef")
    assert (d.accounts, d.token({"D_TOKEN": "tok_d"}), d.token({})) == ({"b"}, "tok_d", "")
    assert load_ingest_clients(None) == ()


def test_a_missing_file_is_refused_naming_it(tmp_path):
    """An accounts file that cannot be read stops the start, naming the file."""
    with pytest.raises(ConfigError, match=r"accounts file .*nope\.toml: cannot read it"):
        load_accounts(tmp_path / "nope.toml", DEFAULTS)


@pytest.mark.processes
def test_a_bad_accounts_file_stops_every_command_with_exit_78(tmp_path):
    """The CLI validates the accounts file first: exit 78 and one line naming account and field."""
    accounts = tmp_path / "accounts.toml"
    accounts.write_text('[accounts.brand]\napi_key_env = "BRAND_KEY"\nrate_per_sec = 0\n')
    env = {"PATH": "/usr/bin:/bin", "MSGWORKER_ACCOUNTS_FILE": str(accounts)}
    done = subprocess.run(
        [sys.executable, "-m", "worker", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 78, done.stderr
    expected = "rate_per_sec: must be a whole number from 1 to 10000"
    assert done.stderr.strip().splitlines() == [
        f"msgworker: accounts file {accounts}: account 'brand': {expected}"
    ]


def _accounts_file(tmp_path: Path) -> Path:
    path = tmp_path / "accounts.toml"
    path.write_text(
        '[accounts.otp]\napi_key_env = "OTP_KEY"\n[accounts.promo]\napi_key_env = "P"\n'
    )
    return path


def test_enqueue_refuses_an_account_the_file_does_not_name(redis_url, tmp_path):
    """The producer knows the configured accounts: others are refused naming the known ones."""
    settings = Settings(
        broker_url=redis_url, accounts_file=_accounts_file(tmp_path), _env_file=None
    )
    runtime = Runtime(settings)
    message = {"to": "905320000001", "type": "text", "text": {"body": "hi"}}
    assert runtime.producer.enqueue(message, account="promo")
    with pytest.raises(InvalidMessage, match=r"unknown account 'default' \(known: otp, promo\)"):
        runtime.producer.enqueue(message)
    runtime.close()


@pytest.mark.processes
def test_the_cli_refuses_an_account_the_file_does_not_name(redis_url, tmp_path):
    """`--account` and `enqueue --file` check against the accounts file: exit 2 naming them."""
    env = {
        "PATH": "/usr/bin:/bin",
        "MSGWORKER_BROKER_URL": redis_url,
        "MSGWORKER_ACCOUNTS_FILE": str(_accounts_file(tmp_path)),
    }
    run = functools.partial(
        subprocess.run,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    done = run([sys.executable, "-m", "worker", "resume", "--account", "typo"])
    assert done.returncode == 2
    assert "unknown account 'typo' (known: otp, promo)" in done.stderr
    assert run([sys.executable, "-m", "worker", "status", "--account", "otp"]).returncode == 0
    line = (
        '{"message": {"to": "905320000001", "type": "text", "text": {"body": "x"}}, "account": "x"}'
    )
    done = run([sys.executable, "-m", "worker", "enqueue", "--file", "-"], input=line + "\n")
    assert done.returncode != 0
    assert "unknown account 'x' (known: otp, promo)" in done.stderr


def test_the_example_accounts_file_is_valid():
    """config/accounts.example.toml, as shipped, loads."""
    example = Path(__file__).parents[1] / "config" / "accounts.example.toml"
    assert list(load_accounts(example, DEFAULTS)) == ["default", "otp", "marketing"]


def test_the_kubernetes_accounts_example_is_valid_and_names_mounted_key_files():
    """deploy/k8s/components/accounts: its accounts.toml loads, and each account's key file lies
    in a volume of the workers made from the Secret msgworker-key-<account>."""
    import yaml  # noqa: PLC0415 - only this test reads YAML

    component = Path(__file__).parents[1] / "deploy" / "k8s" / "components" / "accounts"
    config_map = yaml.safe_load((component / "accounts.yaml").read_text(encoding="utf-8"))
    kustomization = yaml.safe_load((component / "kustomization.yaml").read_text(encoding="utf-8"))
    [workers] = [p for p in kustomization["patches"] if p["target"].get("name") == "msgworker"]
    operations = yaml.safe_load(workers["patch"])
    volumes = {op["value"]["name"]: op["value"] for op in operations if "volumes" in op["path"]}
    mounts = {
        op["value"]["mountPath"]: op["value"]["name"]
        for op in operations
        if "volumeMounts" in op["path"]
    }
    accounts = parse_accounts(config_map["data"]["accounts.toml"], DEFAULTS, source=SOURCE)
    assert set(accounts) == {"otp", "marketing"}
    for name, account in accounts.items():
        assert account.key_file == Path(f"/var/run/secrets/msgworker/{name}/api-key")
        volume = volumes[mounts[str(account.key_file.parent)]]
        assert volume["secret"]["secretName"] == f"msgworker-key-{name}"


@pytest.mark.processes
def test_http_ingest_refuses_an_account_the_file_does_not_name(redis_url, tmp_path):
    """POST /v1/messages for an unlisted account is refused naming the known ones; a listed
    one is accepted."""
    service = Service(
        tmp_path,
        broker_url=redis_url,
        ingest_tokens=TOKEN,
        accounts_file=str(_accounts_file(tmp_path)),
    ).start()
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        message = {"to": "905320000001", "type": "text", "text": {"body": "hi"}}
        with httpx.Client(base_url=service.url, timeout=10) as http:
            ok = http.post(
                "/v1/messages", json={"message": message, "account": "otp"}, headers=auth
            )
            assert ok.status_code == 202, ok.text
            refused = http.post(
                "/v1/messages", json={"message": message, "account": "x"}, headers=auth
            )
        assert refused.status_code == 422
        assert "unknown account 'x' (known: otp, promo)" in refused.text
    finally:
        service.stop()


def test_a_template_event_is_the_account_whose_waba_id_it_names():
    """Two accounts: each by its waba_id, an unknown id none; one account takes every event."""
    two = parse(
        '[accounts.a]\napi_key_env = "A"\nwaba_id = "111"\n'
        '[accounts.b]\napi_key_env = "B"\nwaba_id = "222"\n'
    )
    account_of = template_event_accounts(two)
    assert [account_of(i) for i in ("111", "222", "333")] == ["a", "b", None]
    one = template_event_accounts(parse('[accounts.only]\napi_key_env = "A"\n'))
    assert one("anything") == "only"


@pytest.mark.parametrize(
    ("waba", "expected"),
    [
        ("waba_id = 111", "account 'a': waba_id: must be the WhatsApp Business Account id"),
        ('waba_id = ""', "account 'a': waba_id: must be the WhatsApp Business Account id"),
        (
            'waba_id = "1"\n[accounts.b]\napi_key_env = "B"\nwaba_id = "1"',
            "account 'b': waba_id: '1' names account 'a' already",
        ),
    ],
)
def test_a_bad_or_shared_waba_id_is_refused(waba, expected):
    with pytest.raises(ConfigError, match=re.escape(expected)):
        parse(f'[accounts.a]\napi_key_env = "A"\n{waba}\n')
