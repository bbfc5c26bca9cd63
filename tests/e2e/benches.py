"""Runs a script of bench/ as a user would, against the test's PostgreSQL, for the small
runs that keep the benchmarks working."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_bench(script: str, pg_dsn: str, *args: str) -> str:
    """``bench/<script> --dsn <pg_dsn> ARGS``; its standard output, or a failure with both
    of its outputs."""
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--dsn", pg_dsn, *args],
        env={**os.environ, "EVLEDGER_PG_DSN": pg_dsn},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
