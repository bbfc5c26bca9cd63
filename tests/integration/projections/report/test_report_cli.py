"""`evledger analytics report` as a user runs it on the demo's data: one JSON document,
CSV of one section or a directory of them, filters, and the HTML file."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from projections.report import SECTION_NAMES

EVLEDGER = str(Path(sys.executable).with_name("evledger"))


def _report(data_dir: Path, *args: str, status: int = 0) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("EVLEDGER_")}
    env.update({"EVLEDGER_DATA_DIR": str(data_dir), "COLUMNS": "80"})
    result = subprocess.run(
        [EVLEDGER, "analytics", "report", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == status, (result.stdout, result.stderr)
    return result


def test_json_is_one_document(demo_dir: Path) -> None:
    document = json.loads(_report(demo_dir, "--format", "json").stdout)
    assert document["currency"] == "EUR"
    assert document["period"] == {"from": "2026-03-02", "to": "2026-03-05"}
    assert list(document["sections"]) == list(SECTION_NAMES)
    days = document["sections"]["revenue_by_day"]
    assert all(isinstance(day["gross_minor"], int) and day["currency"] == "EUR" for day in days)
    assert sum(day["gross_minor"] for day in days) == document["headline"]["gross_minor"]


def test_filters_on_every_form(demo_dir: Path) -> None:
    one_day = ("--from", "2026-03-03", "--to", "2026-03-03", "--station", "ST-002")
    document = json.loads(_report(demo_dir, *one_day, "--format", "json").stdout)
    (day,) = document["sections"]["revenue_by_day"]
    assert day["local_day"] == "2026-03-03"
    stations = {r["station_id"] for r in document["sections"]["revenue_by_station_day"]}
    assert stations == {"ST-002"}
    printed = _report(demo_dir, *one_day, "--format", "csv", "--section", "revenue_by_day")
    (row,) = csv.DictReader(io.StringIO(printed.stdout))
    assert int(row["gross_minor"]) == day["gross_minor"]
    table = _report(demo_dir, *one_day).stdout
    assert "2026-03-03 to 2026-03-03" in table
    assert "station ST-002" in table
    unknown = _report(demo_dir, "--currency", "JPY", "--format", "json")
    empty = json.loads(unknown.stdout)
    assert (empty["currency"], empty["headline"]["sessions"]) == ("JPY", 0)
    assert "no sessions" in unknown.stderr


def test_csv_directory_and_bad_input(demo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "sections"
    _report(demo_dir, "--out", str(out))
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.csv" for n in SECTION_NAMES)
    assert "--section NAME" in _report(demo_dir, "--format", "csv", status=2).stderr
    assert "no section 'nope'" in _report(demo_dir, "--section", "nope", status=2).stderr
    assert "--from" in _report(demo_dir, "--from", "March", status=2).stderr


def test_one_section_in_the_terminal_and_the_html_file(demo_dir: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    shown = _report(demo_dir, "--section", "station_utilisation", "--html", str(page))
    assert "Station utilisation" in shown.stdout
    assert "Revenue and energy per day" not in shown.stdout
    assert f"wrote {page}" in shown.stderr
    html = page.read_text()
    assert "https://" not in html.split("<script>")[0]
    assert "<script src" not in html
    assert html.index("id='revenue_by_day'") < html.index("id='payment_outcomes'")
