"""Where the ledger and the read models are, from the settings: the projector's wiring.

PostgreSQL holds the payment history and refund status when EVLEDGER_PG_DSN is set;
otherwise (the embedded default) the same tables live in a SQLite file in the data dir.
Analytics is always DuckDB.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from consumers.projector import DEFAULT_BATCH_SIZE, LedgerSource, Projector, RetryPolicy
from projections.analytics import Analytics
from projections.analytics_snapshot import SnapshotPublisher
from projections.payment_history import PaymentHistory
from projections.read_model import ReadModel
from projections.refund_status import RefundStatusView
from projections.sql import Database, DuckDatabase, PostgresDatabase, SqliteDatabase

if TYPE_CHECKING:
    from cli.settings import Settings

READ_MODEL_NAMES = (PaymentHistory.name, RefundStatusView.name, Analytics.name)
EMBEDDED_VIEWS_FILE = "read_models.sqlite3"


class UnknownProjection(ValueError):
    """A projection name that is not one of READ_MODEL_NAMES."""


def views_database(settings: Settings, pg_schema: str | None = None) -> Database:
    """The database of the payment history and refund status views."""
    if settings.pg_dsn is not None:
        return PostgresDatabase(settings.pg_dsn, schema=pg_schema)
    return SqliteDatabase(settings.data_dir / EMBEDDED_VIEWS_FILE)


def analytics_database(settings: Settings) -> DuckDatabase:
    return DuckDatabase(settings.analytics_path)


def read_models(
    settings: Settings, names: Sequence[str] = READ_MODEL_NAMES, pg_schema: str | None = None
) -> list[ReadModel]:
    unknown = set(names) - set(READ_MODEL_NAMES)
    if unknown:
        raise UnknownProjection(
            f"unknown projection {sorted(unknown)[0]!r}; choose from {', '.join(READ_MODEL_NAMES)}"
        )
    models: list[ReadModel] = []
    views = views_database(settings, pg_schema) if set(names) - {Analytics.name} else None
    if views is not None and PaymentHistory.name in names:
        models.append(PaymentHistory(views))
    if views is not None and RefundStatusView.name in names:
        models.append(RefundStatusView(views))
    if Analytics.name in names:
        analytics = analytics_database(settings)
        models.append(Analytics(analytics, SnapshotPublisher(analytics)))
    return models


@contextmanager
def ledger_source(settings: Settings) -> Iterator[LedgerSource]:
    """The ledger of the configured store (Kafka, or SQLite in the data dir), read-only use."""
    from domain.application import BillingApplication
    from store.environment import ledger_environment

    application = BillingApplication(env=ledger_environment(settings))
    try:
        yield LedgerSource.of(application)
    finally:
        application.close()


@contextmanager
def projector(
    settings: Settings,
    names: Sequence[str] = READ_MODEL_NAMES,
    batch_size: int = DEFAULT_BATCH_SIZE,
    retry: RetryPolicy | None = None,
) -> Iterator[Projector]:
    """A projector over the configured ledger and read models, tables created."""
    models = read_models(settings, names)
    try:
        with ledger_source(settings) as source:
            runner = Projector(source, models, batch_size=batch_size, retry=retry or RetryPolicy())
            runner.create()
            yield runner
    finally:
        for model in models:
            model.db.close()
