"""A small run of bench/scale.py, so the scale benchmark keeps working (no time is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "scale.py"


def test_scale_bench_runs_every_stage_on_a_few_thousand_events(
    kafka_bootstrap: str, pg_dsn: str, tmp_path: Path
) -> None:
    figures = tmp_path / "figures.json"
    env = {**os.environ, "EVLEDGER_KAFKA_BOOTSTRAP": kafka_bootstrap, "EVLEDGER_PG_DSN": pg_dsn}
    done = subprocess.run(
        [sys.executable, str(BENCH), "--events", "2000", "--json", str(figures)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    stages = {stage["name"]: stage for stage in json.loads(figures.read_text())}
    assert list(stages) == [
        "publish",
        "bare-pipe",
        "ingest",
        "bare-consume",
        "project",
        "rebuild",
        "verify",
        "history-customer",
        "history-station",
        "refunds-requested",
    ]
    assert stages["ingest"]["events"] == stages["bare-pipe"]["events"] == 2000
    # Each upstream message makes one or more ledger events, all projected and verified.
    ledger = stages["bare-consume"]["events"]
    assert ledger > 2000
    assert stages["project"]["events"] == stages["rebuild"]["events"] == ledger
    for name in ("ingest", "project", "rebuild", "verify"):
        assert stages[name]["ratio"] > 0
        assert stages[name]["peak_rss_mib"] > 0
    printed = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    for name in ("ingest", "project", "rebuild", "verify"):
        assert "ratio to bare-" in printed[name]
