"""A real HTTP server in a thread that records what is POSTed to it (alert sinks, webhooks)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """A real HTTP server in a thread: records POSTed JSON, answers ``status`` or hangs."""

    def __init__(self):
        self.requests = []  # (path, body)
        self.status = 200
        self.hang = False
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.receiver = self
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def bodies(self):
        return [body for _, body in self.requests]

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        receiver = self.server.receiver
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        receiver.requests.append((self.path, body))
        if receiver.hang:
            receiver.release.wait(10)
            return  # no answer at all: the connection just closes
        self.send_response(receiver.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args):
        """Quiet: the test output is not the place for access logs."""


class Recorder:
    """An alert sink that keeps what it is given."""

    name = "recorder"

    def __init__(self):
        self.alerts = []

    def deliver(self, alert):
        self.alerts.append(alert)
