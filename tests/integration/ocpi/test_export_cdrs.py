"""`evledger ocpi export-cdrs` on the demo's sessions: every CDR is valid OCPI 2.2.1, and the
engine re-prices each one from its own tariff to exactly the totals it states (total_cost
and each dimension, excl. and incl. VAT); the independent Rust engine agrees on a sample
(within its 4-decimal intermediate rounding, as in test_differential)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bootstrap import bootstrap
from bootstrap.settings import Settings
from cli.ocpi_export import sealed_sessions
from consumers.ocpi_contract import Cdr, cdr_to_domain, encode, tariff_to_domain, validate
from demo.pipeline import run_demo
from demo.traffic import TrafficShape
from domain.ocpi.engine import price_cdr
from tests.integration.ocpi.test_differential import (
    PER_LINE,
    ROWS,
    reference,  # noqa: F401 - the fixture
    reference_costs,
)

EVLEDGER = str(Path(sys.executable).with_name("evledger"))
_COSTS = {
    "FLAT": "total_fixed_cost",
    "ENERGY": "total_energy_cost",
    "TIME": "total_time_cost",
    "PARKING_TIME": "total_parking_cost",
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Any], dict[str, str]]:
    data_dir = tmp_path_factory.mktemp("export") / "demo"
    run_demo(data_dir, 11, TrafficShape(stations=3, customers=60, days=2))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVLEDGER_")}
    env.update(EVLEDGER_DATA_DIR=str(data_dir), EVLEDGER_OCPI_PARTY="DE:EVL")
    out = data_dir / "cdrs.json"
    done = subprocess.run(
        [EVLEDGER, "ocpi", "export-cdrs", "--output", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    documents = json.loads(out.read_text(), parse_float=Decimal)
    assert f"wrote {len(documents)} CDRs" in done.stderr
    zones = {
        s.session_id: s.terms.timezone or "UTC"
        for s in sealed_sessions(bootstrap(Settings.embedded_in(data_dir)), None, None)
    }
    assert len(documents) == len(zones) > 20
    return documents, zones


def _price(document: Any, zone: str) -> Any:
    cdr = validate(Cdr, document)
    (tariff,) = cdr.tariffs
    return price_cdr(tariff_to_domain(tariff), cdr_to_domain(cdr), zone)


def test_the_engine_re_prices_every_exported_cdr_to_its_totals(
    exported: tuple[list[Any], dict[str, str]],
) -> None:
    documents, zones = exported
    dimensions_seen: set[str] = set()
    for document in documents:
        pricing = _price(document, zones[document["session_id"]])
        total = document["total_cost"]
        assert (pricing.total_excl_vat.to_major(), pricing.total_incl_vat.to_major()) == (
            total["excl_vat"],
            total["incl_vat"],
        ), document["id"]
        for dimension in pricing.dimensions:
            stated = document[_COSTS[dimension.dimension]]
            assert dimension.excl_vat.to_major() == stated["excl_vat"], document["id"]
            assert dimension.incl_vat.to_major() == stated["incl_vat"], document["id"]
            dimensions_seen.add(dimension.dimension)
        assert pricing.notes == ()
    # The demo's tariffs exercise every dimension: fee, energy windows, time, idle after grace.
    assert dimensions_seen == {"FLAT", "ENERGY", "TIME", "PARKING_TIME"}


def test_the_reference_engine_agrees_on_a_sample(
    exported: tuple[list[Any], dict[str, str]],
    reference: Path,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    documents, zones = exported
    by_tariff: dict[str, list[Any]] = {}
    for document in documents:
        by_tariff.setdefault(document["tariffs"][0]["id"], []).append(document)
    sample = [d for group in by_tariff.values() for d in group[:8]]
    for document in sample:
        zone = zones[document["session_id"]]
        tariff = document["tariffs"][0]
        theirs = reference_costs(reference, tmp_path, encode(tariff), encode(document), zone)
        pricing = _price(document, zone)
        lines = sum(len(period.lines) for period in pricing.periods)
        for (label, kind), amount in theirs.items():
            if label not in ROWS:
                continue
            dimension = ROWS[label]
            key = "excl_vat" if kind == "Excl" else "incl_vat"
            stated = (
                document["total_cost"][key]
                if dimension is None
                else document.get(_COSTS[dimension], {key: Decimal(0)})[key]
            )
            assert amount is not None
            # Ours is rounded to the cent; theirs carries 4 decimals.
            assert abs(stated - amount) <= Decimal("0.005") + PER_LINE * (lines + 1), (
                f"{label} ({kind}) of {document['id']}: exported {stated}, reference {amount}"
            )
