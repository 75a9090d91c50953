"""``msgworker_build_info{version, component} 1``: which msgworker answers a scrape.

Every process that serves /metrics exports it in every scrape, whatever Redis does: the workers
(``component="worker"``) and ``msgworker serve`` (``component="serve"``). Dashboards find their
scrape jobs by this series, and rules count workers by it, so neither needs a job name.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

BUILD_INFO = "msgworker_build_info"
BUILD_INFO_HELP = (
    "Always 1; version says which msgworker answers this scrape, component whether a worker or "
    "msgworker serve."
)
Component = Literal["worker", "serve"]


def package_version() -> str:
    try:
        return version("msgworker")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class BuildInfoCollector(Collector):
    """The series, with the installed package's version (or the one given)."""

    def __init__(self, component: Component, version: str | None = None) -> None:
        self._component = component
        self._version = package_version() if version is None else version

    def collect(self) -> Iterator[Any]:
        info = GaugeMetricFamily(BUILD_INFO, BUILD_INFO_HELP, labels=["version", "component"])
        info.add_metric([self._version, self._component], 1)
        yield info
