"""The analytics tables without a primary key (``Table.append_only``) still hold one row
per key: their keys are new by construction and each batch is applied once. Checked here
on real DuckDB in place of the index, whatever the batch sizes and with a batch that a
racing projector tries to apply twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.application import BillingApplication
from projections.analytics import FACT_TABLES, Analytics
from projections.databases.duckdb import DuckDatabase
from projections.facts import LedgerEvent
from projections.runner import LedgerSource
from projections.tables import Table
from projections.tracking import ProjectionPositionConflict
from tests.unit.projections.scenario import build_ledger, traffic_ledger

APPEND_ONLY = [table for table in FACT_TABLES if table.append_only]


def _ledger() -> list[LedgerEvent]:
    app = BillingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    build_ledger(app)
    traffic_ledger(app, days=1, seed=3)
    return LedgerSource.of(app).read_after(0, 100_000)


LEDGER = _ledger()


def duplicate_keys(db: DuckDatabase, table: Table) -> list[dict[str, object]]:
    key = ", ".join(table.key)
    return db.execute(
        f"SELECT {key}, COUNT(*) AS copies FROM {table.name} GROUP BY {key} HAVING COUNT(*) > 1"
    )


def row_count(db: DuckDatabase, table: Table) -> int:
    return int(db.execute(f"SELECT COUNT(*) AS n FROM {table.name}")[0]["n"])


def test_the_append_only_tables_are_the_positional_and_once_written_facts() -> None:
    assert {table.name for table in APPEND_ONLY} == {
        "fact_postings",
        "fact_rejections",
        "fact_line_items",
    }


@pytest.mark.parametrize("batch_size", [1, 7, 500, len(LEDGER)])
def test_every_append_only_key_is_written_once(batch_size: int, tmp_path: Path) -> None:
    db = DuckDatabase(tmp_path / "analytics.duckdb")
    model = Analytics(db)
    model.create()
    for start in range(0, len(LEDGER), batch_size):
        model.apply(LEDGER[start : start + batch_size])
    for table in APPEND_ONLY:
        assert row_count(db, table) > 0, table.name
        assert duplicate_keys(db, table) == [], table.name
    db.close()


def test_a_batch_applied_twice_is_refused_and_adds_no_row(tmp_path: Path) -> None:
    db = DuckDatabase(tmp_path / "analytics.duckdb")
    first, racing = Analytics(db), Analytics(db)
    first.create()
    first.apply(LEDGER[:200])
    counts = {table.name: row_count(db, table) for table in APPEND_ONLY}
    with pytest.raises(ProjectionPositionConflict):
        racing.apply(LEDGER[:200])
    for table in APPEND_ONLY:
        assert row_count(db, table) == counts[table.name]
        assert duplicate_keys(db, table) == []
    db.close()


def test_the_append_only_tables_carry_no_index(tmp_path: Path) -> None:
    db = DuckDatabase(tmp_path / "analytics.duckdb")
    Analytics(db).create()
    constrained = {
        row["table_name"]
        for row in db.execute(
            "SELECT DISTINCT table_name FROM duckdb_constraints()"
            " WHERE constraint_type = 'PRIMARY KEY'"
        )
    }
    assert constrained.isdisjoint(t.name for t in APPEND_ONLY)
    assert {t.name for t in FACT_TABLES if not t.append_only} <= constrained
    db.close()
