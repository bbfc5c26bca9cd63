"""`evledger demo` on a machine with no services: the whole pipeline, deterministic by seed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

EVLEDGER = str(Path(sys.executable).with_name("evledger"))


def demo(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # No EVLEDGER_* settings: the embedded default, as on a fresh clone.
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVLEDGER_")}
    env["COLUMNS"] = "250"
    return subprocess.run(
        [EVLEDGER, "demo", "--days", "2", "--stations", "3", "--data-dir", str(data_dir), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def report(output: str) -> str:
    """The report without its timing, which is the one thing allowed to differ."""
    return re.sub(r" in [0-9.]+ s", "", output)


def test_demo_runs_the_pipeline_and_reports(tmp_path: Path) -> None:
    result = demo(tmp_path / "demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "0 dead letters" in out
    assert "books balance" in out
    for heading in ("Revenue", "energy", "Peak hours", "Busiest station", "Refunds"):
        assert heading in out
    assert re.search(r"Revenue [0-9,]+\.[0-9]{2} EUR", out)
    for produced in ("upstream.jsonl", "ledger.sqlite3", "analytics.duckdb", "report.html"):
        assert (tmp_path / "demo" / produced).exists()
    last_line = out.strip().splitlines()[-1]
    assert last_line.endswith(
        f"open {tmp_path / 'demo' / 'report.html'} in a browser (works offline)"
    )


def test_same_seed_same_report_and_another_seed_another(tmp_path: Path) -> None:
    first = demo(tmp_path / "demo", "--seed", "3")
    again = demo(tmp_path / "demo", "--seed", "3")
    other = demo(tmp_path / "demo", "--seed", "4")
    assert first.returncode == again.returncode == other.returncode == 0
    assert report(first.stdout) == report(again.stdout)
    assert report(first.stdout) != report(other.stdout)


def test_demo_refuses_a_directory_it_did_not_make(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "ledger.sqlite3").write_text("not the demo's")
    result = demo(precious)
    assert result.returncode == 2
    assert "not made by `evledger demo`" in result.stdout + result.stderr
    assert (precious / "ledger.sqlite3").read_text() == "not the demo's"
