"""What a running ingest shows on its port: Prometheus /metrics over the live counters, and
/readyz, which fails while a read model is stopped at a ledger event it cannot write. On a
sharded ledger /readyz also gives each shard's ledger head and each read model's status,
position and lag on that shard."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from consumers.counters import IngestCounters
from projections.faults import ProjectionStopped
from projections.runner import Projector
from projections.sharded import ShardedProjector


class LedgerHead(Protocol):
    """Where one ledger shard ends (audit/ledger_head.py), asked from the server's thread."""

    def last_notification_id(self) -> int: ...


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


def readiness(
    projector: Projector | None, heads: Sequence[LedgerHead] = ()
) -> tuple[int, dict[str, Any]]:
    """HTTP status and body of /readyz: 503 while any read model is stopped (ingest goes on,
    but what readers see no longer moves). The error text stays in the log: it may quote
    upstream data. With a sharded projector and its shards' ``heads``, a stop names its
    shard and ``shards`` reports each shard."""
    models = [] if projector is None else projector.read_models
    stops = {} if projector is None else projector.stopped
    shards: Sequence[Projector] = ()
    if isinstance(projector, ShardedProjector) and len(heads) == len(projector.shards):
        shards = projector.shards
    projections: dict[str, Any] = {}
    for model in models:
        projections[model.name] = {"status": "running"}
        if not shards and model.name in stops:
            projections[model.name] = _stopped(stops[model.name])
        for number, shard in reversed(list(enumerate(shards))):  # the first stop shows
            if model.name in shard.stopped:
                projections[model.name] = {"shard": number, **_stopped(shard.stopped[model.name])}
    ready = not stops
    body: dict[str, Any] = {"ready": ready, "projections": projections}
    if shards:
        body["shards"] = [
            _shard(number, shard, head)
            for number, (shard, head) in enumerate(zip(shards, heads, strict=True))
        ]
    return (200 if ready else 503), body


def _stopped(stop: ProjectionStopped) -> dict[str, Any]:
    return {"status": "stopped", "position": stop.position, "event_type": stop.event_type}


def _shard(number: int, projector: Projector, head: LedgerHead) -> dict[str, Any]:
    """One shard: its head, and each read model's status, position and lag there."""
    try:
        last: int | None = head.last_notification_id()
        ledger = "ok"
    except RuntimeError as error:  # the ledger is unreachable now: said, and not ready
        last, ledger = None, f"unavailable: {error}"
    positions = projector.known_positions()
    projections = {}
    for model in projector.read_models:
        position = positions.get(model.name)
        lag = None if position is None or last is None else max(0, last - position)
        status = "stopped" if model.name in projector.stopped else "running"
        projections[model.name] = {"status": status, "position": position, "lag": lag}
    return {"shard": number, "ledger": ledger, "ledger_position": last, "projections": projections}


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would drown the ingest's own log."""


def serve_metrics(
    counters: IngestCounters,
    port: int,
    projector: Projector | None = None,
    heads: Sequence[LedgerHead] = (),
) -> None:
    """Serve /metrics and /readyz on loopback in a daemon thread for as long as the process
    runs; ``heads`` (one per shard) are the shards' ledger heads for a sharded /readyz."""
    metrics = make_wsgi_app(registry_for(counters, projector))

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/readyz":
            scraped: Iterable[bytes] = metrics(environ, start_response)
            return scraped
        status, body = readiness(projector, heads)
        reason = "OK" if status == 200 else "Service Unavailable"
        start_response(f"{status} {reason}", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    server = make_server("127.0.0.1", port, app, ThreadingWSGIServer, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
