"""The Celery app's dispatcher: how the pump's dispatches become broker messages."""

from __future__ import annotations

from worker.service.app import MAX_GROUP, create_app, dispatcher
from worker.settings import Settings


def test_dispatches_are_grouped_only_when_there_is_more_than_one_per_consumer():
    """A long queue goes out a few jobs per broker message; a short one, one job per message."""
    app = create_app(
        Settings(broker_url="memory://", redis_url="redis://unused:1/0", _env_file=None)
    )
    sent = []
    app.send_task = lambda name, args, **_: sent.append((name, args))
    dispatch = dispatcher(app, "q", consumers=4)
    dispatch([(f"j{i}", 1) for i in range(4)])
    assert [name for name, _ in sent] == ["msgworker.deliver"] * 4
    sent.clear()
    dispatch([(f"j{i}", 1) for i in range(100)])
    assert {name for name, _ in sent} == {"msgworker.deliver_many"}
    groups = [args[0] for _, args in sent]
    assert max(len(g) for g in groups) <= MAX_GROUP
    assert [pair for g in groups for pair in g] == [[f"j{i}", 1] for i in range(100)]
