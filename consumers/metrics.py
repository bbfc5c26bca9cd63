"""Ingest counters as Prometheus metrics: a collector over the live IngestCounters."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from consumers.counters import IngestCounters
from projections.runner import Projector

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


class ProjectionCollector(Collector):
    """Per read model: 1 when it stopped at an event it cannot write (and where), else 0."""

    def __init__(self, projector: Projector) -> None:
        self.projector = projector

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stopped = GaugeMetricFamily(
            "evledger_projection_stopped",
            "1 when the read model stopped at a ledger event it cannot write.",
            labels=["projection", "position", "event_type"],
        )
        for model in self.projector.read_models:
            stop = self.projector.stopped.get(model.name)
            if stop is None:
                stopped.add_metric([model.name, "", ""], 0)
            else:
                stopped.add_metric([model.name, str(stop.position), stop.event_type], 1)
        yield stopped


def registry_for(counters: IngestCounters, projector: Projector | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(IngestCollector(counters))
    if projector is not None:
        registry.register(ProjectionCollector(projector))
    return registry


def metrics_text(counters: IngestCounters, projector: Projector | None = None) -> str:
    return generate_latest(registry_for(counters, projector)).decode()


def serve_metrics(counters: IngestCounters, port: int, projector: Projector | None = None) -> None:
    """Serve /metrics on loopback in a daemon thread for as long as the process runs."""
    start_http_server(port, addr="127.0.0.1", registry=registry_for(counters, projector))
