"""`evledger publish`, `ingest` and `run`: upstream messages into the ledger."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from cli.output import OutputFormat, progress, render
from cli.settings import Settings, current_settings
from consumers.batch import BatchOutcome

if TYPE_CHECKING:
    from consumers.ingest import IngestConfig, KafkaIngest
    from domain.application import BillingApplication
    from store.recorders import KafkaApplicationRecorder

stderr = Console(stderr=True)

FormatOption = Annotated[
    OutputFormat, typer.Option("--format", "-f", help="Output as a table, JSON or CSV.")
]
BatchSizeOption = Annotated[int, typer.Option(min=1, max=10_000, help="Records per batch.")]
MetricsPortOption = Annotated[
    int | None, typer.Option(help="Serve Prometheus /metrics on 127.0.0.1:PORT.")
]


def _require_kafka(settings: Settings, what: str) -> str:
    if settings.kafka_bootstrap is None:
        stderr.print(
            f"evledger: {what} needs Kafka: set EVLEDGER_KAFKA_BOOTSTRAP "
            "(on the embedded default, use `evledger ingest --file FILE.jsonl`)"
        )
        raise typer.Exit(2)
    return settings.kafka_bootstrap


def _require_file(file: Path) -> int:
    """The number of messages (non-blank lines) in an existing file."""
    if not file.is_file():
        stderr.print(f"evledger: no such file: {file}")
        raise typer.Exit(2)
    with file.open("rb") as lines:
        return sum(1 for line in lines if line.strip())


def _ensure_topics(settings: Settings, *names: str) -> None:
    from store.admin import TopicMisconfigured, TopicSpec, ensure_topic

    assert settings.kafka_bootstrap is not None
    # The ledger topic too, so that a replication factor the cluster cannot hold is refused
    # here in one line, before anything is read or written.
    for name in (*names, settings.ledger_topic):
        try:
            ensure_topic(
                settings.kafka_bootstrap,
                TopicSpec(
                    name=name,
                    replication_factor=settings.kafka_replication_factor,
                    min_insync_replicas=settings.kafka_min_insync_replicas,
                ),
            )
        except TopicMisconfigured as error:
            typer.echo(f"evledger: {error}", err=True)
            raise typer.Exit(2) from None


def _ingest_config(settings: Settings, batch_size: int) -> IngestConfig:
    from consumers.ingest import IngestConfig

    bootstrap = _require_kafka(settings, "ingest from the topic")
    _ensure_topics(settings, settings.ingest_topic, settings.dead_letter_topic)
    return IngestConfig(
        bootstrap_servers=bootstrap,
        ingest_topic=settings.ingest_topic,
        dead_letter_topic=settings.dead_letter_topic,
        group_id=f"{settings.topic_prefix}.ingest",
        instance_id=f"{settings.topic_prefix}.ingest.consumer",
        batch_size=batch_size,
    )


def _kafka_ingest(application: BillingApplication, config: IngestConfig) -> KafkaIngest:
    """The ingest consumer over the Kafka ledger, its writer started before it joins."""
    from consumers.ingest import KafkaIngest
    from store.recorders import KafkaApplicationRecorder

    if not isinstance(application.recorder, KafkaApplicationRecorder):
        stderr.print("evledger: ingest from the topic needs the Kafka ledger")
        raise typer.Exit(2)
    _start_writing(application.recorder)
    return KafkaIngest(application, config)


def _start_writing(recorder: KafkaApplicationRecorder, attempts: int = 6) -> None:
    """Start the ledger's writer, waiting out a transaction coordinator that is being
    elected (a broker just died): init_transactions() then times out, retriably."""
    from kafka.errors import KafkaError

    from consumers.ledger_backoff import LedgerBackoff

    backoff = LedgerBackoff()
    for attempt in range(1, attempts + 1):
        try:
            recorder.start_writing()
            return
        except KafkaError as error:
            if not getattr(error, "retriable", False) or attempt == attempts:
                raise
            delay = backoff.next()
            logging.getLogger(__name__).warning(
                "the ledger's writer cannot start yet (%r); retrying in %.1fs", error, delay
            )
            time.sleep(delay)


def publish(
    file: Annotated[Path, typer.Argument(help="JSON Lines file, one upstream message a line.")],
) -> None:
    """Publish upstream messages from a JSON Lines file to the ingest topic."""
    from consumers.publish import publish_file

    settings = current_settings()
    bootstrap = _require_kafka(settings, "publish")
    total = _require_file(file)
    _ensure_topics(settings, settings.ingest_topic)
    with progress("publishing", total, unit="messages") as bar:
        report = publish_file(file, bootstrap, settings.ingest_topic, on_progress=bar.update)
    typer.echo(f"published {report.published} messages to {settings.ingest_topic}")


def ingest(
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="Read this JSON Lines file instead of the ingest topic; dead letters then go "
            "to dead-letters.jsonl in EVLEDGER_DATA_DIR.",
        ),
    ] = None,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Stop once caught up with the ingest topic.")
    ] = False,
    batch_size: BatchSizeOption = 500,
    metrics_port: MetricsPortOption = None,
    output_format: FormatOption = OutputFormat.table,
) -> None:
    """Apply upstream messages (from the ingest topic, or a file) to the ledger."""
    from consumers.file_ingest import FileIngest
    from consumers.ingest import StopFlag
    from consumers.metrics import serve_metrics
    from domain.application import BillingApplication
    from store.environment import ledger_environment

    logging.basicConfig(level=logging.WARNING)
    settings = current_settings()
    total = _require_file(file) if file is not None else None
    config = _ingest_config(settings, batch_size) if file is None else None
    application = BillingApplication(env=ledger_environment(settings))
    try:
        if file is not None:
            source = FileIngest(application, settings.data_dir / "dead-letters.jsonl", batch_size)
            counters = source.counters
        else:
            assert config is not None
            consumer = _kafka_ingest(application, config)
            counters = consumer.counters
        if metrics_port is not None:
            serve_metrics(counters, metrics_port)
        with progress("ingesting", total, unit="messages") as bar:

            def on_batch(outcome: BatchOutcome) -> None:
                bar.update(counters.consumed, note=counters.summary())

            if file is not None:
                source.run(file, on_batch=on_batch)
            else:
                stop = StopFlag()
                try:
                    with stop.on_signals():
                        consumer.run(stop, until_idle=until_idle, on_batch=on_batch)
                finally:
                    consumer.close()
    finally:
        application.close()
    render([counters.as_dict()], list(counters.as_dict()), output_format, title="ingest")


def run(batch_size: BatchSizeOption = 500, metrics_port: MetricsPortOption = None) -> None:
    """Ingest and project together until stopped (SIGTERM finishes the batch, exits 0)."""
    from consumers.ingest import StopFlag
    from consumers.metrics import serve_metrics
    from consumers.projection_targets import projector
    from consumers.projector import RetryPolicy
    from consumers.run import ProjectorFailed, run_pipeline
    from domain.application import BillingApplication
    from store.environment import ledger_environment

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = current_settings()
    config = _ingest_config(settings, batch_size)
    application = BillingApplication(env=ledger_environment(settings))
    stop = StopFlag()
    try:
        consumer = _kafka_ingest(application, config)
        if metrics_port is not None:
            serve_metrics(consumer.counters, metrics_port)
        try:
            # Like `project`: a long-running projector waits out a broker outage for good.
            with projector(settings, retry=RetryPolicy(attempts=None)) as runner, stop.on_signals():
                counters = run_pipeline(consumer, runner, stop)
        finally:
            consumer.close()
    except ProjectorFailed as failed:
        stderr.print(f"evledger: {failed}")
        raise typer.Exit(1) from None
    finally:
        application.close()
    typer.echo(f"stopped: {counters.summary()}")
