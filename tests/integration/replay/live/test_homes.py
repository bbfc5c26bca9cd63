"""The live-swap contract, run against PostgreSQL, SQLite and DuckDB homes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from projections.analytics import Analytics
from projections.databases.postgres import drop_schema
from projections.payment_history import PaymentHistory
from projections.refund_status import RefundStatusView
from replay.home_duckdb import DuckHome
from replay.home_postgres import PostgresHome
from replay.home_sqlite import SqliteHome
from replay.targets import REBUILD_SCHEMA_PREFIX, ReadModelHome
from tests.integration.replay.conftest import create_schema, dsn_in_schema
from tests.integration.replay.live.contract import LiveSwapTestCase

VIEWS = (PaymentHistory, RefundStatusView)


class TestPostgresHome(LiveSwapTestCase):
    model_classes = VIEWS

    @pytest.fixture(autouse=True)
    def _schema(self, pg_dsn: str) -> Iterator[None]:
        self.schema = f"test_live_{uuid.uuid4().hex[:10]}"
        create_schema(pg_dsn, self.schema)
        yield
        drop_schema(pg_dsn, self.schema)
        for tag in ("contract", "empty", "gone"):
            drop_schema(pg_dsn, f"{REBUILD_SCHEMA_PREFIX}{tag}_retired")
            drop_schema(pg_dsn, f"{REBUILD_SCHEMA_PREFIX}{tag}")

    def make_home(self, request: pytest.FixtureRequest, tmp_path: Path) -> ReadModelHome:
        pg_dsn: str = request.getfixturevalue("pg_dsn")
        return PostgresHome(dsn_in_schema(pg_dsn, self.schema))


class TestSqliteHome(LiveSwapTestCase):
    model_classes = VIEWS

    def make_home(self, request: pytest.FixtureRequest, tmp_path: Path) -> ReadModelHome:
        return SqliteHome(tmp_path / "read_models.sqlite3")


class TestDuckHome(LiveSwapTestCase):
    model_classes = (Analytics,)

    def make_home(self, request: pytest.FixtureRequest, tmp_path: Path) -> ReadModelHome:
        return DuckHome(tmp_path / "analytics.duckdb", in_data_dir=True)
