"""The Celery app: ``celery -A worker.service.app worker`` and ``msgworker worker`` both use it.

Built on first access (module ``__getattr__``), so importing this module reads no settings.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any

from celery import Celery, bootsteps, signals
from kombu.exceptions import ChannelError
from redis.exceptions import RedisError

from worker.logs import configure_logging, get_logger
from worker.observe.metrics_dir import MULTIPROC_ENV
from worker.observe.workers import HEARTBEAT_S, Heartbeat, WorkerInfo
from worker.send.healing import keep_healing
from worker.send.pace import CallPace, group_size
from worker.service.broker import CONSUMER, Rejected, kombu_url, sentinel_options, transport_for
from worker.service.cluster import refuse_cluster_worker, require_broker
from worker.service.rabbit import amqp_conf
from worker.service.runtime import Runtime, current_runtime, refuse_evicting_redis
from worker.service.tasks import BATCH_TASK_NAME, TASK_NAME, deliver_job, deliver_jobs
from worker.settings import Settings, get_settings
from worker.store.connect import on_primary_change
from worker.store.schedule import JobDispatch, Pump
from worker.store.upgrade import keep_pending_jobs, split_legacy_schedule
from worker.urls import BrokerKind, broker_kind

log = get_logger(__name__)


def create_app(settings: Settings) -> Celery:
    require_broker(settings)
    app = Celery("msgworker", broker=kombu_url(settings.broker_url), set_as_current=False)
    app.conf.update(
        broker_transport=transport_for(settings.broker_url),
        # Counts the broker messages Celery logs and drops as unusable.
        worker_consumer=CONSUMER,
        task_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_ignore_result=True,
        # Late acks with re-delivery when a worker is lost; the schedule is the safety net.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.queue,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout_s,
            **sentinel_options(
                settings.broker_url,
                password=settings.sentinel_password,
                timeout_s=settings.redis_timeout_s,
            ),
        },
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    if broker_kind(settings.broker_url) is BrokerKind.RABBITMQ:
        app.conf.update(amqp_conf())
    app.task(name=TASK_NAME, ignore_result=True)(deliver_job)
    app.task(name=BATCH_TASK_NAME, ignore_result=True)(deliver_jobs)
    app.steps["worker"].add(PumpStep)
    return app


def dispatcher(app: Celery, queue: str, *, consumers: int = 1, pace: CallPace | None = None) -> Any:
    """Publishes the pump's dispatches (``schedule.JobDispatch``), a few jobs per broker message.

    Each broker message costs the worker as much CPU as a send; grouping up to MAX_GROUP jobs
    spreads that cost. Groups are as large as every consumer getting work allows, or as quick
    calls allow (``pace``: the calls of this process's pool threads; see worker.send.pace).
    """

    def dispatch(batch: Sequence[JobDispatch]) -> None:
        accounts = len({dispatch[2] for dispatch in batch})
        size = group_size(len(batch), consumers, pace.mean_s if pace else None, accounts)
        with app.producer_or_acquire() as producer:
            # Dealt out in turn, in slot order: a group's jobs come due spread over the batch.
            groups = -(-len(batch) // size)
            for first in range(groups):
                group = [list(pair) for pair in batch[first::groups]]
                name, args = (
                    (TASK_NAME, group[0]) if len(group) == 1 else (BATCH_TASK_NAME, [group])
                )
                # The arguments are short strings and numbers: repr() says what Celery's
                # saferepr would, at a tenth of its cost (a quarter of the publishing).
                app.send_task(
                    name,
                    args=args,
                    queue=queue,
                    producer=producer,
                    argsrepr=repr(args),
                    kwargsrepr="{}",
                )

    return dispatch


def broker_depth(app: Celery, queue: str, *, timeout_s: float | None = None) -> Any:
    """Messages waiting in the broker queue (works for Redis and AMQP brokers).

    One connection, kept between calls (the pump asks every second, /metrics on every scrape;
    a connection each time cost Redis two connects, three PINGs and the count), made again
    after it failed. With ``timeout_s`` (commands), an unreachable or stalled broker raises
    within about that long instead of being retried like the worker's connection.
    """
    options: dict[str, Any] = {}
    if timeout_s is not None:
        options = {
            "connect_timeout": timeout_s,
            "transport_options": {
                **app.conf.broker_transport_options,
                "socket_timeout": timeout_s,
                "socket_connect_timeout": timeout_s,
            },
        }

    lock = threading.Lock()  # the pump's thread and a /metrics scrape may ask at once
    kept: list[Any] = []  # the connection, once made

    def depth() -> int:
        with lock:
            if not kept:
                connection = app.connection_for_read(**options)
                if timeout_s is not None:
                    connection.ensure_connection(max_retries=0)  # no retry: fail now
                kept.append(connection)
            connection = kept[0]
            try:
                declared = connection.default_channel.queue_declare(queue=queue, passive=True)
            except ChannelError:  # Redis has no empty lists: a missing queue holds nothing
                return 0
            except Exception:
                kept.clear()
                connection.release()
                raise
            return int(declared[1])

    return depth


class PumpStep(bootsteps.StartStopStep):
    """In the worker's main process, beside the consumer: the schedule pump and /metrics."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, _worker: Any, **_: Any) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._heartbeat: Heartbeat | None = None

    def start(self, worker: Any) -> None:
        # `celery -A worker.service.app worker` too; before connecting, so that an unreachable
        # cluster is not mistaken for an outage.
        refuse_cluster_worker(get_settings())
        runtime = current_runtime()
        on_primary_change(runtime.redis, _primary_changed)
        refuse_evicting_redis(runtime.redis)
        kept = keep_pending_jobs(runtime.redis, runtime.keys)
        if kept:
            log.info("records.pending_kept", jobs=kept)
        depth = broker_depth(worker.app, runtime.settings.queue)
        runtime.switch_watch.start()
        self._thread = _start_pump(worker, runtime, depth, self._stop)
        interval_s = runtime.settings.halt_probe_interval_s
        self._healing = threading.Thread(
            target=keep_healing,
            args=(runtime.healer, self._stop),
            kwargs={"tick_s": min(1.0, interval_s / 4)},
            name="msgworker-halt-probe",
            daemon=True,
        )
        self._healing.start()
        from worker.observe.metrics import sent_total  # noqa: PLC0415 - prometheus only in workers

        info = WorkerInfo(
            name=f"{worker.hostname}:{os.getpid()}",
            host=socket.gethostname(),
            pid=os.getpid(),
            pool=type(worker.pool).__module__.rpartition(".")[2],
            concurrency=int(worker.concurrency or 1),
            started_at=time.time(),
        )
        self._heartbeat = Heartbeat(runtime.redis, runtime.keys, info, sent_total)
        self._beating = threading.Thread(
            target=_keep_beating,
            args=(self._heartbeat, self._stop),
            name="msgworker-heartbeat",
            daemon=True,
        )
        self._beating.start()
        if runtime.settings.metrics_port:
            from worker.observe.metrics import serve_metrics  # noqa: PLC0415

            serve_metrics(
                runtime.settings.metrics_port,
                lambda: runtime.snapshot(depth, quick=True),
                labels=runtime.metric_labels,
                host=runtime.settings.metrics_host,
                rejected_reasons=[reason.value for reason in Rejected],
            )

    def stop(self, _worker: Any) -> None:
        # Before the pool waits for its tasks (this step stops first): each group in hand ends
        # with the send under way, not with the jobs still queued behind it.
        current_runtime().shutting_down.set()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._heartbeat is not None:
            with suppress(RedisError):
                self._heartbeat.stop()


def _start_pump(
    worker: Any, runtime: Runtime, depth: Callable[[], int], stop: threading.Event
) -> threading.Thread:
    """The schedule pump's thread, once the schedule of an older version is in the lanes."""
    moved = split_legacy_schedule(runtime.redis, runtime.keys)
    if moved:
        log.info("schedule.split_into_lanes", jobs=moved)

    def chores() -> None:
        runtime.dead_letters.remove_old()
        # A worker of an older version may still schedule the old way (a rolling upgrade).
        split_legacy_schedule(runtime.redis, runtime.keys)

    pump = Pump(
        runtime.redis,
        runtime.keys,
        dispatcher(
            worker.app,
            runtime.settings.queue,
            consumers=int(worker.concurrency or 1),
            pace=runtime.call_pace,
        ),
        depth,
        rate=runtime.rate_limit,
        weights={name: account.weight for name, account in runtime.accounts.items()},
        chore=chores,
    )
    thread = threading.Thread(target=pump.run, args=(stop,), name="msgworker-pump", daemon=True)
    thread.start()
    return thread


def _primary_changed(old: tuple[str, int], new: tuple[str, int]) -> None:
    """Counted once per worker command, by its main process (the pump's client)."""
    log.warning("redis.primary_changed", old=f"{old[0]}:{old[1]}", new=f"{new[0]}:{new[1]}")
    from worker.observe.metrics import count_redis_failover  # noqa: PLC0415 - prometheus only in workers

    count_redis_failover()


def _keep_beating(heartbeat: Heartbeat, stop: threading.Event) -> None:
    """Say this worker is alive every few seconds until it stops; Redis outages are ridden out."""
    while True:
        try:
            heartbeat.beat(time.time())
        except RedisError as exc:
            log.warning("heartbeat.failed", error=type(exc).__name__)
        if stop.wait(HEARTBEAT_S):
            return


# A level given on the worker's command line (-l/--loglevel) wins over LOG_LEVEL.
_log_level: list[str] = []


def prefer_log_level(level: str) -> None:
    """Log at ``level`` (celery's -l value) rather than at LOG_LEVEL in this process."""
    _log_level[:] = [level.upper().replace("FATAL", "CRITICAL")]


@signals.setup_logging.connect
def _setup_logging(**_: Any) -> None:
    """Celery would install its own handlers; ours scrub secrets and mask numbers."""
    runtime = current_runtime()
    settings = runtime.settings
    keys = [account.api_key() for account in runtime.accounts.values()]
    configure_logging(
        level=_log_level[0] if _log_level else settings.log_level,
        json=None if settings.log_format is None else settings.log_format == "json",
        secrets=[settings.api_key.get_secret_value(), *(key for key in keys if key)],
    )


@signals.worker_process_shutdown.connect
def _mark_process_dead(pid: int | None = None, **_: Any) -> None:
    """A pool process that exits leaves its counters; its live gauges must go."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess  # noqa: PLC0415

        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]


_app: Celery | None = None


def get_app() -> Celery:
    global _app  # noqa: PLW0603 - one app per process
    if _app is None:
        _app = create_app(get_settings())
    return _app


def __getattr__(name: str) -> Celery:
    if name in {"app", "celery"}:
        return get_app()
    raise AttributeError(name)
