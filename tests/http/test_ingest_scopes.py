"""Scoped ingest tokens: an [ingest.NAME] token acts on its accounts only, on a real serve."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.support.serve import BIN, TOKEN, Service

pytestmark = pytest.mark.processes  # a real msgworker serve

MESSAGE = {"to": "905321234567", "type": "text", "text": {"body": "hello"}}
ACME_TOKEN = "tok_acme_only_0123456789abcdef"  # noqa: S105 - a test token
ALL = {"Authorization": f"Bearer {TOKEN}"}
ACME = {"Authorization": f"Bearer {ACME_TOKEN}"}
ACCOUNTS = """
[accounts.acme]
api_key_env = "ACME_KEY"
[accounts.beta]
api_key_env = "BETA_KEY"
[accounts.gamma]
api_key_env = "GAMMA_KEY"

[ingest.acme_app]
token_file = "acme.token"
accounts = ["acme"]
"""


@pytest.fixture(scope="module")
def service(redis_server, tmp_path_factory):
    """serve with an unscoped INGEST_TOKENS token and a token file scoped to account acme."""
    folder = tmp_path_factory.mktemp("scopes")
    (folder / "accounts.toml").write_text(ACCOUNTS)
    (folder / "acme.token").write_text(f"  {ACME_TOKEN}\n")
    server = Service(
        folder,
        broker_url=redis_server.url,
        ingest_tokens=TOKEN,
        accounts_file=str(folder / "accounts.toml"),
    ).start()
    yield server
    server.stop()


@pytest.fixture
def http(service, redis_client):
    """A client of the service; Redis flushed before the test."""
    with httpx.Client(base_url=service.url, timeout=10) as client:
        yield client


def _on(account: str, **options: str) -> dict[str, object]:
    return {"message": MESSAGE, "account": account, **options}


def test_a_scoped_token_enqueues_only_on_its_accounts(http, redis_client, service):
    """Another account is 403, single or in a batch (refused whole, nothing written); its own
    account is 202; the token never reaches the log."""
    refused = http.post("/v1/messages", json=_on("beta"), headers=ACME)
    assert refused.status_code == 403
    assert "beta" in refused.json()["error"]
    batch = {"messages": [_on("acme"), _on("acme"), _on("beta")]}
    refused = http.post("/v1/messages/batch", json=batch, headers=ACME)
    assert refused.status_code == 403
    assert "messages[2]" in refused.json()["error"]
    assert redis_client.dbsize() == 0
    assert http.post("/v1/messages", json=_on("acme"), headers=ACME).status_code == 202
    batch = {"messages": [_on("acme"), _on("acme")]}
    assert http.post("/v1/messages/batch", json=batch, headers=ACME).status_code == 202
    assert http.post("/v1/messages", json=_on("beta"), headers=ALL).status_code == 202
    assert ACME_TOKEN not in service.log.read_text()


def test_another_accounts_job_is_404_like_a_missing_one(http):
    """GET /v1/jobs/{id} with a scoped token: another account's job answers exactly as no job."""
    beta_id = http.post("/v1/messages", json=_on("beta"), headers=ALL).json()["id"]
    acme_id = http.post("/v1/messages", json=_on("acme"), headers=ALL).json()["id"]
    missing = http.get("/v1/jobs/0123456789abcdef0123456789abcdef", headers=ACME)
    hidden = http.get(f"/v1/jobs/{beta_id}", headers=ACME)
    assert (hidden.status_code, hidden.json()) == (404, missing.json())
    assert http.get(f"/v1/jobs/{acme_id}", headers=ACME).json()["account"] == "acme"
    assert http.get(f"/v1/jobs/{beta_id}", headers=ALL).json()["account"] == "beta"


def test_an_unknown_account_names_only_the_tokens_own(http):
    """A 422 for an unknown account lists the token's accounts to a scoped token, all of them
    to an INGEST_TOKENS token."""
    scoped = http.post("/v1/messages", json=_on("nope"), headers=ACME)
    batch = http.post("/v1/messages/batch", json={"messages": [_on("nope")]}, headers=ACME)
    for answer in (scoped, batch):
        assert answer.status_code == 422
        (error,) = answer.json()["errors"]
        assert (error["field"], error["error"]) == (
            "account",
            "unknown account 'nope' (known: acme)",
        )
    unscoped = http.post("/v1/messages", json=_on("nope"), headers=ALL).json()["errors"]
    assert unscoped[0]["error"] == "unknown account 'nope' (known: acme, beta, gamma)"


def test_a_key_used_on_another_account_tells_a_scoped_token_nothing(http, redis_client):
    """Idempotency keys are per account and a scoped token names only its own: another
    account's key (message or batch) gives it neither that job's id nor a duplicate."""
    beta_id = http.post("/v1/messages", json=_on("beta", idempotency_key="order-7"), headers=ALL)
    beta_id = beta_id.json()["id"]
    keyed = {**ACME, "Idempotency-Key": "order-7"}
    probe = http.post("/v1/messages", json=_on("beta"), headers=keyed)
    assert probe.status_code == 403
    assert beta_id not in probe.text
    own = http.post("/v1/messages", json=_on("acme"), headers=keyed)
    assert own.status_code == 202
    assert own.json()["id"] != beta_id
    beta_batch = http.post(
        "/v1/messages/batch",
        json={"messages": [_on("beta")]},
        headers={**ALL, "Idempotency-Key": "batch-7"},
    ).json()["ids"]
    acme_batch = http.post(
        "/v1/messages/batch",
        json={"messages": [_on("acme")]},
        headers={**ACME, "Idempotency-Key": "batch-7"},
    )
    assert acme_batch.status_code == 202
    assert "duplicate" not in acme_batch.json()
    assert acme_batch.json()["ids"] != beta_batch


def test_a_missing_token_file_stops_serve_with_exit_78(tmp_path):
    """A token file that cannot be read: serve exits 78 with one line naming the table and field,
    before it listens."""
    (tmp_path / "accounts.toml").write_text(ACCOUNTS)
    env = Service(tmp_path, accounts_file=str(tmp_path / "accounts.toml")).env
    done = subprocess.run(  # noqa: S603 - our own command
        [str(BIN / "msgworker"), "serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 78
    assert "ingest 'acme_app': token_file:" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
