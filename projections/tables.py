"""Read-model tables declared once (columns, types, key), with the DDL derived from that."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from projections.entities import Entity

# The ``{type}`` fields every backend's dialect fills in (projections.databases).
ColumnType = Literal["text", "bigint", "int", "bool", "ts", "local_ts", "kwh", "decimal", "json"]


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType


def columns(**types: ColumnType) -> tuple[Column, ...]:
    """Columns in the order given: ``columns(session_key="text", energy_wh="bigint")``."""
    return tuple(Column(name, column_type) for name, column_type in types.items())


@dataclass(frozen=True)
class Table:
    """One table of a read model, filled from the rows of one entity."""

    name: str
    entity: Entity
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    # Keys new by construction (a ledger position; the one pricing of a session): every
    # row is written once, by the batch that holds its event, and the tracking position's
    # compare-and-set applies each batch once. Such a table has no primary key, whose index
    # DuckDB keeps whole in memory, and its rows are appended without a conflict check.
    append_only: bool = False

    def __post_init__(self) -> None:
        names = [column.name for column in self.columns]
        if len(set(names)) != len(names) or not set(self.key) <= set(names):
            raise ValueError(f"table {self.name}: duplicate columns or a key not among them")

    @property
    def value_columns(self) -> frozenset[str]:
        """The columns a row's facts fill (every column but the key)."""
        return frozenset(column.name for column in self.columns) - set(self.key)

    @property
    def order(self) -> str:
        """The key as an ORDER BY list."""
        return ", ".join(self.key)

    def ddl(self) -> str:
        """CREATE TABLE IF NOT EXISTS, with ``{type}`` fields for the dialect to fill."""
        body = [f"{column.name} {{{column.type}}}" for column in self.columns]
        if not self.append_only:
            body.append(f"PRIMARY KEY ({', '.join(self.key)})")
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({', '.join(body)})"
