"""Ingest counters as Prometheus metrics: a collector over the live IngestCounters."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from consumers.counters import IngestCounters

_HELP = {
    "consumed": "Upstream records read from the ingest source.",
    "applied": "Records whose command changed the ledger (including recorded rejections).",
    "duplicates": "Records whose event_id the ledger had already applied.",
    "rejected": "Applied records that the domain recorded as business-rule rejections.",
    "dead_lettered": "Records sent to the dead-letter topic with their reason.",
}


class IngestCollector(Collector):
    def __init__(self, counters: IngestCounters) -> None:
        self.counters = counters

    def collect(self) -> Iterator[CounterMetricFamily]:
        for name, value in self.counters.as_dict().items():
            yield CounterMetricFamily(f"evledger_ingest_{name}", _HELP[name], value=value)


def registry_for(counters: IngestCounters) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(IngestCollector(counters))
    return registry


def metrics_text(counters: IngestCounters) -> str:
    return generate_latest(registry_for(counters)).decode()


def serve_metrics(counters: IngestCounters, port: int) -> None:
    """Serve /metrics on loopback in a daemon thread for as long as the process runs."""
    start_http_server(port, addr="127.0.0.1", registry=registry_for(counters))
