"""Fixtures for the projection tests: a fresh PostgreSQL schema and DuckDB file per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from projections.databases.duckdb import DuckDatabase
from projections.databases.postgres import PostgresDatabase, drop_schema


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[str]:
    """A schema name for this test; dropped (with its tables) afterwards."""
    schema = f"test_projections_{uuid.uuid4().hex[:10]}"
    yield schema
    drop_schema(pg_dsn, schema)


@pytest.fixture
def pg(pg_dsn: str, pg_schema: str) -> Iterator[PostgresDatabase]:
    db = PostgresDatabase(pg_dsn, schema=pg_schema)
    yield db
    db.close()


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[DuckDatabase]:
    db = DuckDatabase(tmp_path / "analytics.duckdb")
    yield db
    db.close()
