"""The live-swap contract, run against PostgreSQL, SQLite and DuckDB homes."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from projections.analytics import Analytics
from projections.analytics_snapshot import snapshot_path
from projections.databases.postgres import drop_schema
from projections.payment_history import PaymentHistory
from projections.refund_status import RefundStatusView
from projections.runner import LedgerSource
from replay.home_duckdb import DuckHome
from replay.home_postgres import PostgresHome
from replay.home_sqlite import SqliteHome
from replay.ledger_prefix import project_to
from replay.swap import LiveModelBusy
from replay.targets import REBUILD_SCHEMA_PREFIX, ModelGroup, ReadModelHome
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

    def test_a_swap_finding_the_live_file_open_keeps_the_live_models(
        self, home: ReadModelHome, ledger: LedgerSource, tmp_path: Path
    ) -> None:
        """The rename's window: the swap closes its own connection, and a connection that
        has the file open then (here one of this process, sharing DuckDB's instance; another
        process's as tests/integration/replay/test_duck_file_swap.py shows) refuses it. The
        refusal leaves that connection's lock: no other process opens the file for writing."""
        head = ledger.last_position()
        live_db = home.live()
        (live,) = [Analytics(live_db)]
        live.create()
        project_to(ledger, [live], head // 2)
        before = live.snapshot()
        place = home.rebuild_place("refused")
        try:
            (rebuilt,) = [Analytics(place.db)]
            rebuilt.create()
            project_to(ledger, [rebuilt], head)
            side = home.live_side(ModelGroup(home, (Analytics,)), place)
            try:
                with side.held(), pytest.raises(LiveModelBusy, match="nothing swapped"):
                    side.swap_in([rebuilt], {rebuilt.name: head})
            finally:
                side.close()
            assert Path(place.where).exists()
        finally:
            place.discard()
        assert (live.position(), live.snapshot()) == (head // 2, before)
        opening = [sys.executable, "-c", f"import duckdb; duckdb.connect({str(live_db.path)!r})"]
        second_writer = subprocess.run(opening, capture_output=True, text=True, check=False)
        assert second_writer.returncode != 0
        assert "lock" in second_writer.stderr
        live_db.close()
        assert not snapshot_path(tmp_path / "analytics.duckdb").exists()
        assert sorted(path.name for path in tmp_path.iterdir()) == ["analytics.duckdb"]
