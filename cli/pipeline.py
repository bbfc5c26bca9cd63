"""`evledger publish`, `ingest` and `run`: upstream messages into the ledger."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from cli.context import current_root
from cli.options import FormatOption
from cli.output import LazyConsole, OutputFormat, progress, render

if TYPE_CHECKING:  # imported when a command runs: `evledger --help` does without them
    from bootstrap import Root
    from bootstrap.ledgers import KafkaSite
    from consumers.batch import BatchOutcome
    from consumers.ingest import KafkaIngest, ShardTask
    from store.recorders import KafkaApplicationRecorder

stderr = LazyConsole(stderr=True)

BatchSizeOption = Annotated[int, typer.Option(min=1, max=10_000, help="Records per batch.")]
MetricsPortOption = Annotated[
    int | None, typer.Option(help="Serve Prometheus /metrics on 127.0.0.1:PORT.")
]


def kafka_site(root: Root, what: str) -> KafkaSite:
    """The Kafka site, or one line saying what needs it and exit 2."""
    from bootstrap.ledgers import NeedsKafka

    try:
        return root.ledger.kafka(what)
    except NeedsKafka as needs:
        stderr.print(f"evledger: {needs}")
        raise typer.Exit(2) from None


def ensure_topics(site: KafkaSite, *names: str) -> None:
    """Create the topics if missing, and the ledger topic too, so that a replication factor
    the cluster cannot hold is refused here in one line, before anything is written."""
    from store.admin import TopicMisconfigured

    try:
        site.ensure_topics(*names, *site.ledger_topics)
    except TopicMisconfigured as error:
        typer.echo(f"evledger: {error}", err=True)
        raise typer.Exit(2) from None


def _require_file(file: Path) -> int:
    """The number of messages (non-blank lines) in an existing file."""
    if not file.is_file():
        stderr.print(f"evledger: no such file: {file}")
        raise typer.Exit(2)
    with file.open("rb") as lines:
        return sum(1 for line in lines if line.strip())


class _RootShards:
    """ShardTasks over the root's write applications, one per ledger shard."""

    def __init__(self, root: Root) -> None:
        self.root = root

    def open(self, shard: int) -> ShardTask:
        from consumers.ingest import ShardTask

        application = self.root.application(shard)
        writer = self.root.ledger.shard(shard).kafka_writer(application)
        _start_writing(writer)
        return ShardTask(shard, application, writer)

    def close(self, shard: int) -> None:
        self.root.close_shard(shard)


# Exit status of an ingest that another instance took over: a supervisor that restarts
# it would only take the ledger back from the newer one, so it is told apart from 1.
EXIT_TAKEN_OVER = 3


def _took_over() -> tuple[type[Exception], ...]:
    from consumers.membership import IngestReplaced
    from store.writer import WriterFenced

    return (WriterFenced, IngestReplaced)


def _taken_over(error: Exception) -> NoReturn:
    """One line, no traceback: nothing of the current batch was committed by this one."""
    stderr.print(
        f"evledger: another ingest took over the ledger writer; stopping ({error})",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(EXIT_TAKEN_OVER) from None


class _NoClientTracebacks(logging.Filter):
    """kafka-python logs its own threads' failures with tracebacks (a socket closed under a
    read while a fenced member closes); its message says enough, and a trace reads as if
    evledger had crashed."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("kafka") and record.exc_info:
            record.exc_info = None
            record.exc_text = None
        return True


def _log_to_stderr(level: int, format: str = logging.BASIC_FORMAT) -> None:
    logging.basicConfig(level=level, format=format)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_NoClientTracebacks())


def _kafka_ingest(root: Root, batch_size: int) -> KafkaIngest:
    """The ingest consumer over the Kafka ledger: each shard's writer started before its
    partition is read."""
    from consumers.ingest import IngestConfig, KafkaIngest

    site = kafka_site(root, "ingest from the topic")
    ensure_topics(site, site.ingest_topic, site.dead_letter_topic)
    config = IngestConfig(
        connection=site.connection,
        ingest_topic=site.ingest_topic,
        dead_letter_topic=site.dead_letter_topic,
        group_id=site.ingest_group,
        instance_id=f"{site.ingest_group}.consumer",
        batch_size=batch_size,
        shards=site.ledger_shards,
    )
    return KafkaIngest(_RootShards(root), config)


def _start_writing(recorder: KafkaApplicationRecorder, attempts: int = 6) -> None:
    """Start the ledger's writer, waiting out a transaction coordinator that is being
    elected (a broker just died: init_transactions() then times out, retriably) or a
    writer process that died while it started (WriterUnavailable; a fenced writer is not
    retried)."""
    from kafka.errors import KafkaError

    from consumers.ledger_backoff import LedgerBackoff
    from store.writer import WriterUnavailable

    backoff = LedgerBackoff()
    for attempt in range(1, attempts + 1):
        try:
            recorder.start_writing()
            return
        except (KafkaError, WriterUnavailable) as error:
            retriable = isinstance(error, WriterUnavailable) or getattr(error, "retriable", False)
            if not retriable or attempt == attempts:
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
    from consumers.producer import PublishRefused, publish_file

    site = kafka_site(current_root(), "publish")
    total = _require_file(file)
    ensure_topics(site, site.ingest_topic)
    try:
        with progress("publishing", total, unit="messages") as bar:
            report = publish_file(
                file,
                site.connection,
                site.ingest_topic,
                on_progress=bar.update,
                shards=site.ledger_shards,
            )
    except PublishRefused as refused:
        typer.echo(f"evledger: {refused}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"published {report.published} messages to {site.ingest_topic}")


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
    from consumers.sources import IngestSource

    _log_to_stderr(logging.WARNING)
    root = current_root()
    total = _require_file(file) if file is not None else None
    try:
        source: IngestSource = (
            _kafka_ingest(root, batch_size)
            if file is None
            else FileIngest.sharded(
                # Each message to its shard's application, by the publisher's routing rule.
                [root.application(shard) for shard in range(root.ledger.shards)],
                file,
                root.settings.data_dir / "dead-letters.jsonl",
                batch_size,
            )
        )
        counters = source.counters
        if metrics_port is not None:
            serve_metrics(counters, metrics_port)
        stop = StopFlag()
        try:
            with progress("ingesting", total, unit="messages") as bar, stop.on_signals():

                def on_batch(outcome: BatchOutcome) -> None:
                    bar.update(counters.consumed, note=counters.summary())

                source.run(stop, until_idle=until_idle, on_batch=on_batch)
        finally:
            source.close()
    except _took_over() as fenced:
        _taken_over(fenced)
    finally:
        root.close()
    render([counters.as_dict()], list(counters.as_dict()), output_format, title="ingest")


def run(batch_size: BatchSizeOption = 500, metrics_port: MetricsPortOption = None) -> None:
    """Ingest and project together until stopped (SIGTERM finishes the batch, exits 0)."""
    from consumers.ingest import StopFlag
    from consumers.metrics import serve_metrics
    from consumers.pipeline import ProjectorFailed, run_pipeline
    from projections.runner import RetryPolicy

    _log_to_stderr(logging.INFO, "%(asctime)s %(name)s %(message)s")
    root = current_root()
    stop = StopFlag()
    try:
        consumer = _kafka_ingest(root, batch_size)
        try:
            # Like `project`: a long-running projector waits out a broker outage for good.
            with root.projector(retry=RetryPolicy(attempts=None)) as runner, stop.on_signals():
                if metrics_port is not None:
                    # Each shard's head, for a sharded /readyz's lag per shard; they live
                    # as long as the server's thread, until the process ends.
                    ledger = root.ledger
                    heads = [ledger.shard(p).head() for p in range(ledger.shards)]
                    serve_metrics(consumer.counters, metrics_port, runner, heads)
                counters = run_pipeline(consumer, runner, stop)
                stopped = list(runner.stopped.values())
        finally:
            consumer.close()
    except ProjectorFailed as failed:
        stderr.print(f"evledger: {failed}")
        raise typer.Exit(1) from None
    except _took_over() as fenced:
        _taken_over(fenced)
    finally:
        root.close()
    for projection in stopped:  # ingest went on without it; say so once more at the end
        stderr.print(projection.describe(), markup=False, highlight=False)
    typer.echo(f"stopped: {counters.summary()}")
