"""What a running ingest shows on its port: Prometheus /metrics over the live counters, and
/readyz, which fails while a read model is stopped at a ledger event it cannot write."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer
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


def readiness(projector: Projector | None) -> tuple[int, dict[str, Any]]:
    """HTTP status and body of /readyz: 503 while any read model is stopped (ingest goes on,
    but what readers see no longer moves). The error text stays in the log: it may quote
    upstream data."""
    models = [] if projector is None else projector.read_models
    stops = {} if projector is None else projector.stopped
    projections: dict[str, Any] = {}
    for model in models:
        stop = stops.get(model.name)
        projections[model.name] = (
            {"status": "running"}
            if stop is None
            else {"status": "stopped", "position": stop.position, "event_type": stop.event_type}
        )
    ready = not stops
    return (200 if ready else 503), {"ready": ready, "projections": projections}


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would drown the ingest's own log."""


def serve_metrics(counters: IngestCounters, port: int, projector: Projector | None = None) -> None:
    """Serve /metrics and /readyz on loopback in a daemon thread for as long as the process
    runs."""
    metrics = make_wsgi_app(registry_for(counters, projector))

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/readyz":
            scraped: Iterable[bytes] = metrics(environ, start_response)
            return scraped
        status, body = readiness(projector)
        reason = "OK" if status == 200 else "Service Unavailable"
        start_response(f"{status} {reason}", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    server = make_server("127.0.0.1", port, app, ThreadingWSGIServer, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
