"""Property test: our OCPI engine agrees with the independent Rust engine (ocpi-tariffs-cli).

Generated tariffs and CDRs (see strategies.py) are written as OCPI JSON, priced by
`ocpi-tariffs price ... -o v221 -z ZONE` and by evledger (parsed by consumers/ocpi_contract,
priced by domain/ocpi/engine). The totals and each dimension's cost, excl. and incl. VAT,
must agree to within what the reference's 4-decimal intermediate rounding can move them.
`make test` builds the binary into evledger's cache (`make tools`) and names it in
OCPI_TARIFFS_BIN; without it this test fails.
"""

from __future__ import annotations

import os
import re
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.ocpi_contract import (
    Cdr,
    Tariff,
    cdr_to_domain,
    encode,
    tariff_to_domain,
    validate,
)
from domain.ocpi.engine import CdrPricing, price_cdr
from tests.integration.ocpi.strategies import ZONES, cdrs, tariffs

BINARY = Path(
    os.environ.get(
        "OCPI_TARIFFS_BIN",
        Path.home() / ".cache" / "evledger" / "ocpi-tariffs-cli-0.45.0" / "bin" / "ocpi-tariffs",
    )
)
# The reference rounds hours to 4 decimals and each period's cost to 4 decimals, and adds
# VAT to the rounded figure: a few 1/10000 per priced line, never a cent.
PER_LINE = Decimal("0.0001")
ROWS = {
    "Total Cost": None,
    "Total Fixed Cost": "FLAT",
    "Total Energy Cost": "ENERGY",
    "Total Time Cost": "TIME",
    "Total Parking Cost": "PARKING_TIME",
}
_ROW = re.compile(r"^\|\s*(Total [A-Za-z ]*Cost) \((Excl|Incl)\.\)\s*\|\s*([^|]*?)\s*\|")


@pytest.fixture(scope="module")
def reference() -> Path:
    if not (BINARY.is_file() and os.access(BINARY, os.X_OK)):
        pytest.fail(
            f"the reference OCPI engine is missing at {BINARY}: run `make tools` "
            "(cargo install ocpi-tariffs-cli --version 0.45.0)",
            pytrace=False,
        )
    return BINARY


def reference_costs(binary: Path, workdir: Path, tariff: str, cdr: str, zone: str) -> dict:
    (workdir / "tariff.json").write_text(tariff)
    (workdir / "cdr.json").write_text(cdr)
    done = subprocess.run(
        [binary, "price", "-t", "tariff.json", "-c", "cdr.json", "-o", "v221", "-z", zone],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    costs: dict[tuple[str, str], Decimal | None] = {}
    for line in done.stdout.splitlines():
        match = _ROW.match(line)
        if match:
            label, kind, cell = match.groups()
            amount = re.sub(r"[^0-9.\-]", "", cell)
            costs[(label, kind)] = Decimal(amount) if amount not in ("", "-") else None
    assert done.returncode == 0 and ("Total Cost", "Excl") in costs, (
        f"ocpi-tariffs failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n"
        f"tariff: {tariff}\ncdr: {cdr}"
    )
    return costs


def ours(pricing: CdrPricing, label: str, kind: str) -> Decimal:
    dimension = ROWS[label]
    if dimension is None:
        exact = pricing.total_excl_vat_exact if kind == "Excl" else pricing.total_incl_vat_exact
        return exact
    found = pricing.dimension(dimension)
    if found is None:
        return Decimal(0)
    return found.excl_vat_exact if kind == "Excl" else found.incl_vat_exact


@settings(
    max_examples=int(os.environ.get("OCPI_DIFFERENTIAL_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(tariff=tariffs(), cdr=cdrs(), zone_index=st.integers(0, len(ZONES) - 1))
def test_prices_agree_with_the_reference_engine(
    reference: Path, tmp_path: Path, tariff: dict[str, Any], cdr: dict[str, Any], zone_index: int
) -> None:
    zone = ZONES[zone_index]
    tariff_json, cdr_json = encode(tariff), encode(cdr)
    theirs = reference_costs(reference, tmp_path, tariff_json, cdr_json, zone)
    pricing = price_cdr(
        tariff_to_domain(validate(Tariff, tariff)), cdr_to_domain(validate(Cdr, cdr)), zone
    )
    lines = sum(len(period.lines) for period in pricing.periods)
    tolerance = PER_LINE * (lines + 1)
    for (label, kind), their_amount in theirs.items():
        if label not in ROWS:
            continue
        mine = ours(pricing, label, kind)
        assert their_amount is not None, f"{label} ({kind}) has no reference figure"
        assert abs(mine - their_amount) <= tolerance, (
            f"{label} ({kind}): evledger {mine} vs reference {their_amount} in {zone}\n"
            f"tariff: {tariff_json}\ncdr: {cdr_json}"
        )
