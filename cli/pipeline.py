"""`evledger publish` and `evledger ingest`: upstream messages into the ledger."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.output import OutputFormat, render
from cli.settings import Settings, current_settings
from consumers.batch import BatchOutcome

if TYPE_CHECKING:
    from consumers.ingest import IngestConfig

stderr = Console(stderr=True)

FormatOption = Annotated[
    OutputFormat, typer.Option("--format", "-f", help="Output as a table, JSON or CSV.")
]


def _require_kafka(settings: Settings, what: str) -> str:
    if settings.kafka_bootstrap is None:
        stderr.print(
            f"evledger: {what} needs Kafka: set EVLEDGER_KAFKA_BOOTSTRAP "
            "(on the embedded default, use `evledger ingest --file FILE.jsonl`)"
        )
        raise typer.Exit(2)
    return settings.kafka_bootstrap


def _ensure_topics(settings: Settings, *names: str) -> None:
    from store.admin import TopicSpec, ensure_topic

    assert settings.kafka_bootstrap is not None
    for name in names:
        ensure_topic(
            settings.kafka_bootstrap,
            TopicSpec(
                name=name,
                replication_factor=settings.kafka_replication_factor,
                min_insync_replicas=settings.kafka_min_insync_replicas,
            ),
        )


def _progress(description: str, total: int | None) -> Progress:
    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counters]}"),
        TimeElapsedColumn(),
        console=stderr,
        transient=False,
        disable=not stderr.is_terminal,
    )


def _ingest_config(settings: Settings, batch_size: int) -> IngestConfig:
    from consumers.ingest import IngestConfig

    bootstrap = _require_kafka(settings, "ingest from the topic")
    _ensure_topics(settings, settings.ingest_topic, settings.dead_letter_topic)
    return IngestConfig(
        bootstrap_servers=bootstrap,
        ingest_topic=settings.ingest_topic,
        dead_letter_topic=settings.dead_letter_topic,
        group_id=f"{settings.topic_prefix}.ingest",
        transactional_id=f"{settings.topic_prefix}.ingest.consumer",
        batch_size=batch_size,
    )


def publish(
    file: Annotated[Path, typer.Argument(help="JSON Lines file, one upstream message a line.")],
) -> None:
    """Publish upstream messages from a JSON Lines file to the ingest topic."""
    from consumers.publish import publish_file

    settings = current_settings()
    bootstrap = _require_kafka(settings, "publish")
    if not file.is_file():
        stderr.print(f"evledger: no such file: {file}")
        raise typer.Exit(2)
    _ensure_topics(settings, settings.ingest_topic)
    total = sum(1 for line in file.open("rb") if line.strip())
    with _progress("publishing", total) as progress:
        task = progress.add_task("publish", total=total, counters="")
        report = publish_file(
            file,
            bootstrap,
            settings.ingest_topic,
            on_progress=lambda sent: progress.update(task, completed=sent),
        )
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
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Records per batch.")] = 500,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus /metrics on 127.0.0.1:PORT.")
    ] = None,
    output_format: FormatOption = OutputFormat.table,
) -> None:
    """Apply upstream messages (from the ingest topic, or a file) to the ledger."""
    from consumers.file_ingest import FileIngest
    from consumers.ingest import KafkaIngest, StopFlag
    from consumers.metrics import serve_metrics
    from domain.application import BillingApplication
    from store.environment import ledger_environment

    logging.basicConfig(level=logging.WARNING)
    settings = current_settings()
    if file is not None and not file.is_file():
        stderr.print(f"evledger: no such file: {file}")
        raise typer.Exit(2)
    config = None if file is not None else _ingest_config(settings, batch_size)
    application = BillingApplication(env=ledger_environment(settings))
    try:
        if file is not None:
            source = FileIngest(application, settings.data_dir / "dead-letters.jsonl", batch_size)
            counters = source.counters
            total: int | None = sum(1 for line in file.open("rb") if line.strip())
        else:
            assert config is not None
            consumer = KafkaIngest(application, config)
            counters, total = consumer.counters, None
        if metrics_port is not None:
            serve_metrics(counters, metrics_port)
        with _progress("ingesting", total) as progress:
            task = progress.add_task("ingest", total=total, counters="")

            def on_batch(outcome: BatchOutcome) -> None:
                progress.update(task, completed=counters.consumed, counters=counters.summary())

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


def run(
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Records per batch.")] = 500,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus /metrics on 127.0.0.1:PORT.")
    ] = None,
) -> None:
    """Ingest and project together until stopped (SIGTERM finishes the batch, exits 0)."""
    from consumers.ingest import KafkaIngest, StopFlag
    from consumers.metrics import serve_metrics
    from consumers.projection_targets import projector
    from consumers.run import ProjectorFailed, run_pipeline
    from domain.application import BillingApplication
    from store.environment import ledger_environment

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = current_settings()
    config = _ingest_config(settings, batch_size)
    application = BillingApplication(env=ledger_environment(settings))
    stop = StopFlag()
    try:
        consumer = KafkaIngest(application, config)
        if metrics_port is not None:
            serve_metrics(consumer.counters, metrics_port)
        with projector(settings) as runner, stop.on_signals():
            counters = run_pipeline(consumer, runner, stop)
        consumer.close()
    except ProjectorFailed as failed:
        stderr.print(f"evledger: {failed}")
        raise typer.Exit(1) from None
    finally:
        application.close()
    typer.echo(f"stopped: {counters.summary()}")
