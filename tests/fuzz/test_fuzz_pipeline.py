"""Fuzz: generated and mutated upstream messages through the real contract,
domain, embedded ledger, SQLite and DuckDB projections and audit. Nothing may crash,
consumed = applied + duplicates + dead-lettered, the read models equal a rebuild and the
ledger verifies. EVLEDGER_FUZZ_MESSAGES sets the total (default 2,000; bench/fuzz.py runs
100,000)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.messages import message_bytes
from tests.fuzz.pipeline import FuzzFigures, run_messages

PER_EXAMPLE = 100
TOTAL = int(os.environ.get("EVLEDGER_FUZZ_MESSAGES", "2000"))
FIGURES = FuzzFigures()


@settings(
    max_examples=max(1, TOTAL // PER_EXAMPLE),
    deadline=None,
    derandomize=os.environ.get("EVLEDGER_FUZZ_SEED") is None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
@given(st.lists(message_bytes(), min_size=PER_EXAMPLE, max_size=PER_EXAMPLE))
def test_no_message_breaks_the_pipeline(messages: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        FIGURES.add(run_messages(messages, Path(workdir)))


def test_the_fuzz_run_reached_its_size() -> None:
    # Runs after the property (file order): the total really went through.
    assert FIGURES.consumed >= TOTAL // PER_EXAMPLE * PER_EXAMPLE
    assert FIGURES.consumed == FIGURES.applied + FIGURES.duplicates + FIGURES.dead_lettered
