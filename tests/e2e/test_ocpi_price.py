"""`evledger ocpi price` as a user runs it: table, JSON, and refusals with a reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EVLEDGER = str(Path(sys.executable).with_name("evledger"))
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ocpi"
TARIFF = str(FIXTURES / "tariff_flat_and_energy.json")
CDR = str(FIXTURES / "cdr_20_45_kwh.json")
LOCATION = str(FIXTURES / "location_utrecht.json")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EVLEDGER, "ocpi", "price", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
        check=False,
    )


def test_table_shows_each_dimension_beside_the_cdrs_totals() -> None:
    done = run("--tariff", TARIFF, "--cdr", CDR, "--location", LOCATION)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[1]: line.split()[2:] for line in done.stdout.splitlines() if "│" in line}
    # FLAT 1 1 session 0.50 0.60 | CDR 0.50 0.60 ; ENERGY 20.45 -> 20.5 kWh 5.13 5.64
    assert [c for c in rows["FLAT"] if c != "│"] == [
        "1",
        "1",
        "session",
        "0.50",
        "0.60",
        "0.50",
        "0.60",
    ]
    assert [c for c in rows["ENERGY"] if c != "│"][:6] == [
        "20.45",
        "20.5",
        "kWh",
        "5.13",
        "5.64",
        "5.13",
    ]
    assert [c for c in rows["TOTAL"] if c != "│"] == ["5.63", "6.24", "5.63", "6.24"]
    assert "agrees" in done.stdout


def test_json_for_machines() -> None:
    done = run("--tariff", TARIFF, "--cdr", CDR, "--time-zone", "Europe/Amsterdam", "-f", "json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["total"]["excl_vat"] == "5.63"
    assert document["total"]["incl_vat"] == "6.24"
    assert document["agrees_with_cdr"] is True
    energy = document["periods"][0]["lines"][1]
    assert (energy["dimension"], energy["billed_volume"], energy["step_size"]) == (
        "ENERGY",
        "20.5",
        100,
    )


def test_a_cdr_whose_total_differs_is_shown_as_differing(tmp_path: Path) -> None:
    cdr = json.loads(Path(CDR).read_text())
    cdr["total_cost"] = {"excl_vat": 6.00, "incl_vat": 6.70}
    overcharged = tmp_path / "cdr.json"
    overcharged.write_text(json.dumps(cdr))
    done = run("--tariff", TARIFF, "--cdr", str(overcharged), "--time-zone", "Europe/Amsterdam")
    assert done.returncode == 0, done.stderr
    assert "DIFFERS" in done.stdout


def test_without_a_time_zone_it_refuses_to_guess() -> None:
    done = run("--tariff", TARIFF, "--cdr", CDR)
    assert done.returncode == 2
    assert "does not guess" in done.stderr


def test_a_bad_object_is_refused_with_field_and_reason(tmp_path: Path) -> None:
    tariff = json.loads(Path(TARIFF).read_text())
    tariff["elements"][0]["price_components"][1]["step_size"] = "100"
    bad = tmp_path / "tariff.json"
    bad.write_text(json.dumps(tariff))
    done = run("--tariff", str(bad), "--cdr", CDR, "--time-zone", "Europe/Amsterdam")
    assert done.returncode == 2
    assert "elements.0.price_components.1.step_size" in done.stderr
    assert "valid integer" in done.stderr
