"""A producer's Unavailable says which Redis (its URL, masked) and, when the connection says so,
what is wrong: a TLS certificate the client does not trust is named, not hidden behind "cannot
reach Redis". A real redis-server with TLS and a self-signed certificate."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.support.cluster import run_msgworker, worker_env
from tests.support.messages import text
from tests.support.processes import free_port, redis_server_binary, wait_for
from worker.errors import Unavailable
from worker.service.runtime import Runtime
from worker.settings import Settings

pytestmark = pytest.mark.processes  # a redis-server of its own


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory):
    """redis-server on a TLS port with a self-signed certificate; (port, certificate path)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(  # noqa: S603 - openssl, fixed arguments
        [
            "/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    port = free_port()
    log = folder / "redis-server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(  # noqa: S603 - our binary, our arguments
            [
                redis_server_binary(), "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
                "--tls-cert-file", str(cert), "--tls-key-file", str(key),
                "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
                "--save", "", "--dir", str(folder),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def answers() -> bool:
        client = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(cert))
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    try:
        try:
            wait_for(answers, timeout_s=10, what="redis-server with TLS")
        except TimeoutError:
            pytest.fail(f"{redis_server_binary()} did not serve TLS:\n{log.read_text()[-2000:]}")
        yield port, cert
    finally:
        server.terminate()
        server.wait(timeout=10)


def producer_of(url: str) -> Runtime:
    return Runtime(Settings(broker_url=url, redis_timeout_s=1, _env_file=None))


def test_an_untrusted_certificate_is_named_with_the_url(tls_redis):
    """rediss:// to a self-signed server: Unavailable names the URL and the certificate, and
    says what to do; with the CA given in the URL, the same enqueue goes through."""
    port, cert = tls_redis
    url = f"rediss://127.0.0.1:{port}/0"
    runtime = producer_of(url)
    started = time.monotonic()
    with pytest.raises(Unavailable) as refused:
        runtime.producer.enqueue(text("tls"))
    assert time.monotonic() - started < 5
    message = str(refused.value)
    assert url in message
    assert "TLS certificate is not trusted" in message
    assert "ssl_ca_certs" in message
    runtime.close()
    trusted = producer_of(f"{url}?ssl_ca_certs={cert}")
    assert trusted.producer.enqueue(text("tls"))
    trusted.close()


def test_the_url_is_named_masked(tmp_path: Path):
    """Nothing listening: the Redis is named by its URL, its password masked."""
    runtime = producer_of(f"redis://:pw-s3cret-value@127.0.0.1:{free_port()}/0")
    with pytest.raises(Unavailable) as refused:
        runtime.producer.enqueue(text("down"))
    runtime.close()
    assert "127.0.0.1" in str(refused.value)
    assert "pw-s3cret-value" not in str(refused.value)
    assert refused.value.problem is None


def test_commands_name_the_certificate_too(tls_redis):
    """`msgworker status` against the same server: exit 69, one line naming the certificate."""
    port, _ = tls_redis
    env = worker_env(f"rediss://127.0.0.1:{port}/0", "http://127.0.0.1:9")
    env["MSGWORKER_REDIS_TIMEOUT_S"] = "1"
    done = run_msgworker(env, "status")
    assert done.returncode == 69, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "TLS certificate is not trusted" in line
