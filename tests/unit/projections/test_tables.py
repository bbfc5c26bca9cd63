"""Read-model tables are declared once; the DDL and the columns written come from that."""

from __future__ import annotations

from pathlib import Path

import pytest

from projections.analytics import FACT_TABLES, Analytics
from projections.databases.duckdb import DUCKDB, DuckDatabase
from projections.facts import Entity
from projections.tables import Column, Table, columns


def test_the_ddl_is_derived_from_the_declaration() -> None:
    table = Table(
        "fact_things",
        Entity.POSTING,
        key=("notification_id", "line_no"),
        columns=columns(notification_id="bigint", line_no="int", amount_kwh="kwh"),
    )
    assert table.ddl() == (
        "CREATE TABLE IF NOT EXISTS fact_things (notification_id {bigint}, line_no {int},"
        " amount_kwh {kwh}, PRIMARY KEY (notification_id, line_no))"
    )
    assert table.value_columns == {"amount_kwh"}
    assert table.order == "notification_id, line_no"


@pytest.mark.parametrize(
    "key, declared",
    [
        (("a",), (Column("a", "text"), Column("b", "text"), Column("b", "int"))),
        (("a", "missing"), columns(a="text", b="text")),
    ],
    ids=["a repeated column", "a key that is not a column"],
)
def test_a_declaration_with_a_duplicate_or_a_stray_key_is_refused(
    key: tuple[str, ...], declared: tuple[Column, ...]
) -> None:
    with pytest.raises(ValueError, match="duplicate columns or a key"):
        Table("t", Entity.SESSION, key=key, columns=declared)


def test_analytics_tables_in_duckdb_are_exactly_the_declared_columns(tmp_path: Path) -> None:
    db = DuckDatabase(tmp_path / "analytics.duckdb")
    Analytics(db).create()
    for table in FACT_TABLES:
        stored = db.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = ? ORDER BY ordinal_position",
            [table.name],
        )
        # DuckDB names TEXT by its own name, VARCHAR.
        declared = [
            (c.name, DUCKDB.types[c.type].replace("TEXT", "VARCHAR")) for c in table.columns
        ]
        assert [(row["column_name"], row["data_type"]) for row in stored] == declared
    db.close()
