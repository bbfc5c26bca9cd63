"""Which read models exist and which database each lives in: PostgreSQL holds the payment
history and refund status when EVLEDGER_PG_DSN is set, otherwise (the embedded default) a
SQLite file in the data dir does; analytics is always DuckDB."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from bootstrap.settings import Settings
    from projections.databases.port import Database
    from projections.read_model import ReadModel
    from replay.home_duckdb import DuckHome
    from replay.targets import ViewsHome

# Each read model's `name`, in projection order (a unit test keeps them equal); the classes
# are imported only by what projects (read_model_classes), never by a query.
READ_MODEL_NAMES = ("payment_history", "refund_status", "analytics")
ANALYTICS = "analytics"
EMBEDDED_VIEWS_FILE = "read_models.sqlite3"


def read_model_classes() -> dict[str, type[ReadModel]]:
    """Every read model class by name."""
    from projections.analytics import Analytics
    from projections.payment_history import PaymentHistory
    from projections.refund_status import RefundStatusView

    return {model.name: model for model in (PaymentHistory, RefundStatusView, Analytics)}


class UnknownProjection(ValueError):
    """A projection name that is not one of READ_MODEL_NAMES."""


def projection_names(requested: Sequence[str] | None) -> list[str]:
    """The projections asked for, in READ_MODEL_NAMES order; none or ``all`` means every one."""
    if not requested or "all" in requested:
        return list(READ_MODEL_NAMES)
    unknown = sorted(set(requested) - set(READ_MODEL_NAMES))
    if unknown:
        raise UnknownProjection(
            f"unknown projection {unknown[0]!r}; choose from {', '.join(READ_MODEL_NAMES)} or all"
        )
    return [name for name in READ_MODEL_NAMES if name in requested]


def views_home(settings: Settings) -> ViewsHome:
    """The one place that decides between PostgreSQL and SQLite for the views."""
    if settings.pg_dsn is not None:
        from replay.home_postgres import PostgresHome

        return PostgresHome(settings.pg_dsn)
    from replay.home_sqlite import SqliteHome

    return SqliteHome(settings.data_dir / EMBEDDED_VIEWS_FILE)


def live_views_database(settings: Settings) -> Database:
    """The live views database as ``views_home(settings).live()`` opens it, without
    importing replay's homes (the swap, the checksums): a query's start-up does without
    them. A unit test keeps the two equal."""
    if settings.pg_dsn is not None:
        from projections.databases.postgres import PostgresDatabase

        return PostgresDatabase(settings.pg_dsn)
    from projections.databases.sqlite import SqliteDatabase

    return SqliteDatabase(settings.data_dir / EMBEDDED_VIEWS_FILE)


def analytics_home(settings: Settings, file: Path | None = None) -> DuckHome:
    """The analytics home; ``file``: the live file, symlinks resolved, if known already."""
    from replay.home_duckdb import DuckHome

    return DuckHome(
        settings.analytics_path,
        in_data_dir=settings.duckdb_path is None,
        memory_limit_mib=settings.duckdb_memory_limit_mib,
        file=file,
    )
