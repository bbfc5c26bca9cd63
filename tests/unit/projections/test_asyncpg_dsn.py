"""The API's event-loop pool (asyncpg) reads the same libpq DSN as every other connection:
URI or key=value, TLS settings, the server settings in `options`; a parameter it cannot
honour is a clear error, never silently dropped."""

from __future__ import annotations

import pytest

from projections.databases.postgres_async import UnsupportedDsn, asyncpg_arguments


def test_a_uri_with_a_schema_and_tls() -> None:
    arguments = asyncpg_arguments(
        "postgresql://evledger:p%40ss@db.example:5433/ledger"
        "?options=-csearch_path%3Dapi&sslmode=verify-full&sslrootcert=/etc/ca.pem"
        "&connect_timeout=3"
    )
    assert arguments["host"] == "db.example"
    assert arguments["port"] == 5433
    assert arguments["user"] == "evledger"
    assert arguments["password"] == "p@ss"
    assert arguments["database"] == "ledger"
    assert arguments["timeout"] == 3.0
    assert arguments["server_settings"] == {"options": "-csearch_path=api"}
    assert arguments["dsn"] == "postgresql://?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem"


def test_key_value_pairs() -> None:
    arguments = asyncpg_arguments("host=/var/run/postgresql port=5433 dbname=ledger")
    assert (arguments["host"], arguments["port"], arguments["database"]) == (
        "/var/run/postgresql",
        5433,
        "ledger",
    )
    assert arguments["dsn"] == "postgresql://?"
    assert arguments["server_settings"] == {}


def test_a_parameter_it_cannot_honour_is_an_error() -> None:
    with pytest.raises(UnsupportedDsn, match="gssencmode"):
        asyncpg_arguments("host=db gssencmode=require")
