"""Where read models live, are rebuilt and are kept as snapshots: the live databases from
the settings, a fresh schema or file beside them for a rebuild, a named one for a snapshot.

Read models that share a database form a group and swap together: the payment history
and refund status (PostgreSQL, or SQLite on the embedded default), and analytics (DuckDB).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from consumers.projection_targets import (
    EMBEDDED_VIEWS_FILE,
    READ_MODEL_NAMES,
    UnknownProjection,
    analytics_database,
    views_database,
)
from projections.analytics import Analytics
from projections.payment_history import PaymentHistory
from projections.read_model import ReadModel
from projections.refund_status import RefundStatusView
from projections.sql import Database, DuckDatabase, PostgresDatabase, SqliteDatabase

if TYPE_CHECKING:
    from cli.settings import Settings

Backend = Literal["postgres", "sqlite", "duckdb"]

READ_MODEL_CLASSES: dict[str, type[ReadModel]] = {
    PaymentHistory.name: PaymentHistory,
    RefundStatusView.name: RefundStatusView,
    Analytics.name: Analytics,
}
REBUILD_SCHEMA_PREFIX = "evledger_rebuild_"
SNAPSHOT_SCHEMA_PREFIX = "snapshot_"
SNAPSHOTS_DIR = "snapshots"
ANALYTICS_FILE = "analytics.duckdb"
_LABEL = re.compile(r"^[a-z0-9][a-z0-9_]{0,39}$")


class BadSnapshotName(ValueError):
    """A snapshot name that cannot be a schema or file name."""


@dataclass(frozen=True)
class ModelGroup:
    """Read models that live in one database."""

    backend: Backend
    classes: tuple[type[ReadModel], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(model_class.name for model_class in self.classes)


def projection_names(requested: list[str] | None) -> list[str]:
    """The projections asked for, in READ_MODEL_NAMES order; none or ``all`` means every one."""
    if not requested or "all" in requested:
        return list(READ_MODEL_NAMES)
    unknown = sorted(set(requested) - set(READ_MODEL_NAMES))
    if unknown:
        raise UnknownProjection(
            f"unknown projection {unknown[0]!r}; choose from {', '.join(READ_MODEL_NAMES)} or all"
        )
    return [name for name in READ_MODEL_NAMES if name in requested]


def model_groups(settings: Settings, names: list[str]) -> list[ModelGroup]:
    views = tuple(READ_MODEL_CLASSES[name] for name in names if name != Analytics.name)
    groups = []
    if views:
        groups.append(ModelGroup("postgres" if settings.pg_dsn else "sqlite", views))
    if Analytics.name in names:
        groups.append(ModelGroup("duckdb", (Analytics,)))
    return groups


def live_database(settings: Settings, group: ModelGroup) -> Database:
    """The database the group's live models are in (and queries read)."""
    if group.backend == "duckdb":
        return analytics_database(settings)
    return views_database(settings)


def new_tag() -> str:
    return uuid.uuid4().hex[:10]


@dataclass
class Place:
    """A database made for a rebuild or a snapshot, and how to remove it."""

    db: Database
    where: str

    def discard(self) -> None:
        """Remove the schema or files (and everything in them)."""
        self.db.close()
        if isinstance(self.db, PostgresDatabase) and self.db.schema is not None:
            drop_schema(self.db.dsn, self.db.schema)
        elif isinstance(self.db, SqliteDatabase | DuckDatabase):
            remove_database_file(self.db.path)


def drop_schema(dsn: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as connection:
        connection.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


def remove_database_file(path: Path) -> None:
    for suffix in ("", ".wal", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def rebuild_place(settings: Settings, group: ModelGroup, tag: str) -> Place:
    """A new, empty schema or file beside the live one (same server, same directory)."""
    if group.backend == "postgres":
        assert settings.pg_dsn is not None
        schema = f"{REBUILD_SCHEMA_PREFIX}{tag}"
        return Place(PostgresDatabase(settings.pg_dsn, schema=schema), f"schema {schema}")
    if group.backend == "sqlite":
        path = settings.data_dir / f"{Path(EMBEDDED_VIEWS_FILE).stem}.rebuild-{tag}.sqlite3"
        return Place(SqliteDatabase(path), str(path))
    live = settings.analytics_path
    path = live.with_name(f"{live.stem}.rebuild-{tag}.duckdb")
    return Place(DuckDatabase(path), str(path))


def check_label(label: str) -> str:
    if not _LABEL.fullmatch(label):  # match() would let a trailing newline through
        raise BadSnapshotName(
            f"snapshot name {label!r}: use 1-40 lower-case letters, digits and '_', "
            "starting with a letter or digit"
        )
    return label


def snapshot_dir(settings: Settings, label: str) -> Path:
    """The snapshot's files: a directory laid out like a data dir, for EVLEDGER_DATA_DIR."""
    return settings.data_dir / SNAPSHOTS_DIR / check_label(label)


def snapshot_place(settings: Settings, group: ModelGroup, label: str) -> Place:
    """The named snapshot's schema or file, emptied first (a snapshot is rebuilt whole)."""
    directory = snapshot_dir(settings, label)
    if group.backend == "postgres":
        assert settings.pg_dsn is not None
        schema = f"{SNAPSHOT_SCHEMA_PREFIX}{label}"
        drop_schema(settings.pg_dsn, schema)
        return Place(PostgresDatabase(settings.pg_dsn, schema=schema), f"schema {schema}")
    path = directory / (EMBEDDED_VIEWS_FILE if group.backend == "sqlite" else ANALYTICS_FILE)
    remove_database_file(path)
    directory.mkdir(parents=True, exist_ok=True)
    db: Database = SqliteDatabase(path) if group.backend == "sqlite" else DuckDatabase(path)
    return Place(db, str(path))
