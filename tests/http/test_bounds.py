"""The front door's bounds on a real ``msgworker serve``: bodies bounded while they stream on
every route, strict JSON, capped error lists, header and idle timeouts, a connection cap."""

from __future__ import annotations

import json
import resource
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import wait_for
from tests.support.serve import TOKEN, Service

pytestmark = pytest.mark.processes  # every test here runs real child processes

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "whsec_test_0123456789abcdef"  # noqa: S105 - a test secret
PASSWORD = "console-test-password"  # noqa: S105
MESSAGE = {"to": "905321234567", "type": "text", "text": {"body": "hello"}}
MIB = 1024 * 1024
# Each body pushed, faster than serve can refuse it.
PUSH_BYTES = 1024 * MIB
CLIENTS = 3
RSS_GROWTH_MAX_BYTES = 50 * MIB
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# Each route with the headers to send and the answer due; the last never reads its body.
ROUTES = (
    ("/console/login", FORM, b"413"),
    ("/console/accounts/acme/halt", FORM, b"413"),
    ("/v1/messages/batch", AUTH, b"413"),
    ("/webhooks/gateway", {"Authorization": f"Bearer {SECRET}"}, b"413"),
    ("/v1/messages", {}, b"401"),
)


@pytest.fixture(scope="module")
def service(redis_server, tmp_path_factory) -> Iterator[Service]:
    """serve with every part on: ingest, webhooks and the console."""
    server = Service(
        tmp_path_factory.mktemp("serve"),
        broker_url=redis_server.url,
        ingest_tokens=TOKEN,
        webhook_secret=SECRET,
        console_password=PASSWORD,
    ).start()
    yield server
    server.stop()


@pytest.fixture
def http(service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=30) as client:
        yield client


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _push(
    port: int, path: str, headers: dict[str, str], *, chunked: bool, stop: threading.Event
) -> bytes:
    """POST ``PUSH_BYTES`` to ``path`` (chunked, or with its Content-Length), whatever serve
    answers meanwhile, unless ``stop`` is set or serve hangs up; the start of the answer."""
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {PUSH_BYTES}"
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    piece = b"a" * MIB
    frame = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: serve\r\n{head}{framing}\r\n\r\n".encode())
        try:
            for _ in range(PUSH_BYTES // MIB):
                if stop.is_set():
                    return b""
                sock.sendall(frame)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # serve hung up on the body: it holds none of it
        return sock.recv(64)


def test_huge_bodies_leave_memory_flat(service, http):
    """3 clients pushing 1 GB bodies (chunked or with a Content-Length) at the console's
    login and forms, ingest and webhooks, and at a route that refuses before reading: serve's
    RSS stays within 50 MB of idle; each is refused (413, or 401 without a token)."""
    for path, headers, _ in ROUTES:  # every route warmed up once: imports and pools are idle size
        http.post(path, content=b"x" * 1024, headers=headers)
    assert service.process is not None
    pid = service.process.pid
    idle = _rss_bytes(pid)
    peak = idle
    stop = threading.Event()
    answers: list[tuple[bytes, bytes]] = []

    def client(first: int) -> None:
        for number, (path, headers, due) in enumerate(ROUTES):
            if number % CLIENTS == first:  # the routes shared out: 1 GB each, 3 at a time
                answer = _push(service.port, path, headers, chunked=number % 2 == 0, stop=stop)
                answers.append((answer[9:12], due))

    clients = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in clients:
        thread.start()
    while any(thread.is_alive() for thread in clients):
        peak = max(peak, _rss_bytes(pid))
        if peak - idle > RSS_GROWTH_MAX_BYTES:
            stop.set()  # failed already: no need to push serve to gigabytes
        clients[0].join(0.02)
    for thread in clients:
        thread.join()
    assert (peak - idle) / MIB <= RSS_GROWTH_MAX_BYTES / MIB
    assert all(status == due for status, due in answers), answers


@pytest.mark.parametrize(
    "body",
    [
        b'{"to": "905321234567", "to": "905329999999", "type": "text", "text": {"body": "x"}}',
        json.dumps(MESSAGE).encode("utf-16"),
        json.dumps(MESSAGE).encode("utf-16-le"),
        json.dumps(MESSAGE).encode("utf-32"),
    ],
    ids=["duplicate-key", "utf-16", "utf-16-without-bom", "utf-32"],
)
def test_only_strict_utf8_json_is_read(http, redis_client, body):
    """A key twice in one object, or a body in UTF-16 or UTF-32: 400 naming the body, and
    nothing enqueued."""
    answer = http.post("/v1/messages", content=body, headers=AUTH)
    assert answer.status_code == 400
    (error,) = answer.json()["errors"]
    assert error["field"] == "body"
    assert error["error"].startswith("the body is not JSON: ")
    assert not redis_client.keys("*job*")


@pytest.mark.parametrize(("bad", "truncated"), [(100, False), (150, True), (995, True)])
def test_a_422_lists_at_most_100_errors(http, redis_client, bad, truncated):
    """An invalid batch's 422 lists its first 100 errors in order, and says when there were
    more; nothing is enqueued."""
    items = [{**MESSAGE, "to": "not a number"}] * bad + [MESSAGE] * 5
    answer = http.post("/v1/messages/batch", json={"messages": items}, headers=AUTH)
    assert answer.status_code == 422
    body = answer.json()
    assert [error["index"] for error in body["errors"]] == list(range(100))
    assert body.get("truncated", False) is truncated
    assert not redis_client.keys("*job*")


def _closed_by_serve(sock: socket.socket) -> bool:
    """Whether serve has closed this connection (what it sent before is read and dropped)."""
    while select.select([sock], [], [], 0)[0]:
        try:
            if not sock.recv(65536):
                return True
        except ConnectionResetError:
            return True
    return False


def _connect(port: int, sent: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(sent)
    return sock


def _get(sock: socket.socket, path: str = "/healthz") -> bytes:
    """One keep-alive request on ``sock``, its answer read whole; the answer's status line."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: serve\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head.partition(b"\r\n")[0]


def test_slow_and_idle_connections_are_closed(service):
    """A connection idle after an answer is closed after 5 s; one that sends nothing, or half a
    header line, is closed once its headers are 10 s late."""
    with (
        _connect(service.port) as silent,
        _connect(service.port, b"GET /healthz HTTP/1.1\r\nHost: se") as half,
        _connect(service.port) as idle,
    ):
        assert _get(idle) == b"HTTP/1.1 200 OK"
        started = time.monotonic()
        wait_for(lambda: _closed_by_serve(idle), timeout_s=15, what="the idle connection closed")
        idle_s = time.monotonic() - started
        assert not _closed_by_serve(silent)
        assert not _closed_by_serve(half)
        wait_for(lambda: _closed_by_serve(silent), timeout_s=15, what="the silent one closed")
        wait_for(lambda: _closed_by_serve(half), timeout_s=5, what="the half-sent one closed")
        assert idle_s < time.monotonic() - started


def test_an_endless_header_is_refused(service):
    """A header that never ends: serve refuses it (431) and closes the connection once the
    request's head passes 64 KiB, instead of holding it while it grows."""
    with _connect(service.port, b"GET /healthz HTTP/1.1\r\nX-Endless: ") as sock:
        answer = b""
        for _ in range(32):
            if select.select([sock], [], [], 0.05)[0]:
                answer = sock.recv(65536)
                break
            sock.sendall(b"a" * 8192)
        assert answer.startswith(b"HTTP/1.1 431 ")
        wait_for(lambda: _closed_by_serve(sock), timeout_s=5, what="the connection closed")


def test_a_head_past_the_limit_in_one_read_is_refused(service):
    """The first read of a connection counts too: a 100 KiB header that never ends, sent at
    once, is refused with 431 at once, not held until the 10 s header timeout because no read
    before it was head."""
    head = b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * (100 * 1024)
    with _connect(service.port) as sock:
        sock.sendall(head)
        ready = select.select([sock], [], [], 3)[0]
        assert ready, "no answer"
        assert sock.recv(65536).startswith(b"HTTP/1.1 431 ")


def test_connections_past_the_cap_get_503(redis_server, tmp_path):
    """With SERVE_MAX_CONNECTIONS=3 and 3 open, a new connection is answered 503 and closed,
    the open ones are still served, and a new one is served once one of them closes."""
    server = Service(
        tmp_path, broker_url=redis_server.url, ingest_tokens=TOKEN, serve_max_connections="3"
    ).start()
    opened: list[socket.socket] = []
    try:
        opened = [_connect(server.port) for _ in range(3)]
        assert all(_get(sock) == b"HTTP/1.1 200 OK" for sock in opened)
        with httpx.Client(base_url=server.url, timeout=5) as http:
            refused = http.get("/healthz")
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] == "1"
            assert "too many connections" in refused.json()["error"]
            assert _get(opened[0]) == b"HTTP/1.1 200 OK"
            opened.pop().close()
            wait_for(lambda: http.get("/healthz").status_code == 200, what="a free connection")
    finally:
        for sock in opened:
            sock.close()
        server.stop()


def test_the_open_files_limit_does_not_refuse_clients(redis_server, tmp_path):
    """Started with a soft limit of 256 open files, serve raises it to the hard limit: with
    300 idle connections open, a new client is still served."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard >= 1024, "this test needs a hard limit of open files of 1024 or more (ulimit -Hn)"
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        server = Service(tmp_path, broker_url=redis_server.url).start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    idle: list[socket.socket] = []
    try:
        idle = [_connect(server.port) for _ in range(300)]
        with httpx.Client(base_url=server.url, timeout=5) as http:
            assert http.get("/healthz").status_code == 200
    finally:
        for sock in idle:
            sock.close()
        server.stop()
