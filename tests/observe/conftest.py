"""Fixtures shared by the alerting tests: receivers, an HTTP client, dispatchers."""

import httpx
import pytest

from tests.support.receiver import Receiver
from worker.observe.sinks import AlertDispatcher


@pytest.fixture
def serve():
    """Start receivers on demand; stop them all afterwards."""
    started = []

    def start():
        receiver = Receiver()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


@pytest.fixture
def http():
    client = httpx.Client(timeout=5.0)
    yield client
    client.close()


@pytest.fixture
def dispatch(serve):
    """Make dispatchers; close them after releasing any hanging receiver."""
    made = []
    receivers = []

    def make(sinks, **kwargs):
        dispatcher = AlertDispatcher(sinks, **kwargs)
        made.append(dispatcher)
        return dispatcher

    def serving():
        receiver = serve()
        receivers.append(receiver)
        return receiver

    make.serve = serving
    yield make
    for receiver in receivers:
        receiver.release.set()
    for dispatcher in made:
        dispatcher.close(timeout_s=5)
