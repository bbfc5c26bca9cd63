"""The API pool's reading connection overrides a psycopg method that is not public: the
psycopg installed must have the signature it was written against, and another one stops
the import with a message saying what to check."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from projections.databases import postgres_reading


def test_the_installed_psycopg_has_the_wait_the_override_was_written_against() -> None:
    postgres_reading._check_psycopg()


def test_another_wait_signature_stops_the_import(monkeypatch: pytest.MonkeyPatch) -> None:
    async def wait(self: Any, gen: Any, interval: float = 0.1) -> Any:
        return None

    monkeypatch.setattr(psycopg.AsyncConnection, "wait", wait)
    with pytest.raises(ImportError, match=r"postgres_reading\.py"):
        postgres_reading._check_psycopg()
