"""What a deployment whose state store is a Redis Cluster may run today, and the refusal of the
rest with one line saying why (exit 78, as for every setting that cannot work).

A cluster cannot carry the dispatches (kombu has no transport for it), so anything that needs a
broker needs BROKER_URL too. Workers are not supported on a cluster yet: the send path's
scripts still name keys of several slots from a prefix, which a cluster refuses; a worker
started there would fail on its first job rather than send it.
"""

from __future__ import annotations

from worker.errors import ConfigError
from worker.settings import ENV_PREFIX, Settings
from worker.urls import CLUSTER_CARRIES_NO_DISPATCHES, StoreKind, store_kind

NO_BROKER = f"{ENV_PREFIX}BROKER_URL must be set on Redis Cluster: {CLUSTER_CARRIES_NO_DISPATCHES}"
WORKERS_NOT_YET = (
    "a worker on Redis Cluster is not supported yet: the send path's scripts still touch keys "
    "of several slots (docs/high-availability.md, Redis Cluster)"
)


def require_broker(settings: Settings) -> None:
    """ConfigError when there is no broker to reach: a cluster store without BROKER_URL."""
    if not settings.has_broker:
        raise ConfigError(NO_BROKER)


def refuse_cluster_worker(settings: Settings) -> None:
    """ConfigError for a worker whose store is a cluster: first for a missing broker (needed
    even once workers are supported there), then because workers are not supported yet."""
    if store_kind(settings.state_url) is StoreKind.CLUSTER:
        require_broker(settings)
        raise ConfigError(WORKERS_NOT_YET)
