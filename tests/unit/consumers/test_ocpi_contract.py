"""OCPI 2.2.1 objects: valid ones become engine values; bad ones name the field and reason."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from consumers.contract import ContractViolation
from consumers.ocpi_contract import (
    Cdr,
    Location,
    Tariff,
    cdr_to_domain,
    decode,
    objects_in,
    tariff_to_domain,
    validate,
)
from domain.ocpi.engine import price_cdr

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ocpi"


def load(name: str) -> Any:
    return decode((FIXTURES / name).read_text())


def test_valid_objects_parse_and_price_to_the_spec_example() -> None:
    tariff = tariff_to_domain(validate(Tariff, load("tariff_flat_and_energy.json")))
    cdr = cdr_to_domain(validate(Cdr, load("cdr_20_45_kwh.json")))
    location = validate(Location, load("location_utrecht.json"))
    assert cdr.total_cost.excl_vat == Decimal("5.63")  # read as Decimal, never a float
    pricing = price_cdr(tariff, cdr, location.time_zone)
    assert (pricing.total_excl_vat.minor, pricing.total_incl_vat.minor) == (563, 624)


def test_a_datetime_without_zone_is_utc() -> None:
    document = load("cdr_20_45_kwh.json")
    document["start_date_time"] = "2024-06-03T07:30:00"
    assert validate(Cdr, document).start_date_time == datetime(2024, 6, 3, 7, 30, tzinfo=UTC)


def _broken(name: str, path: str, value: Any) -> Any:
    document = copy.deepcopy(load(name))
    *parents, last = path.split(".")
    target = document
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is DELETE:
        del target[int(last) if last.isdigit() else last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return document


DELETE = object()


@pytest.mark.parametrize(
    ("model", "name", "path", "value", "field", "reason"),
    [
        (Tariff, "tariff_flat_and_energy.json", "currency", "XXX", "currency", "unknown ISO 4217"),
        (Tariff, "tariff_flat_and_energy.json", "elements", [], "elements", "at least 1"),
        (
            Tariff,
            "tariff_flat_and_energy.json",
            "elements.0.price_components.1.price",
            "0.25",
            "elements.0.price_components.1.price",
            "must be a JSON number",
        ),
        (
            Tariff,
            "tariff_flat_and_energy.json",
            "elements.0.price_components.1.step_size",
            DELETE,
            "elements.0.price_components.1.step_size",
            "Field required",
        ),
        (
            Tariff,
            "tariff_flat_and_energy.json",
            "elements.0.restrictions",
            {"start_time": "7:00"},
            "elements.0.restrictions.start_time",
            "should match pattern",
        ),
        (
            Tariff,
            "tariff_flat_and_energy.json",
            "elements.0.restrictions",
            {"day_of_week": ["MON"]},
            "elements.0.restrictions.day_of_week.0",
            "MONDAY",
        ),
        (Tariff, "tariff_flat_and_energy.json", "party_id", "EVLX", "party_id", "pattern"),
        (Location, "location_utrecht.json", "time_zone", "CET+1", "time_zone", "unknown IANA"),
        (Location, "location_utrecht.json", "time_zone", DELETE, "time_zone", "Field required"),
        (Cdr, "cdr_20_45_kwh.json", "total_cost", DELETE, "total_cost", "Field required"),
        (Cdr, "cdr_20_45_kwh.json", "charging_periods", [], "charging_periods", "at least 1"),
        (
            Cdr,
            "cdr_20_45_kwh.json",
            "charging_periods.0.dimensions.0.type",
            "STATE_OF_CHARGE",
            "charging_periods.0.dimensions.0.type",
            "Session-only dimension",
        ),
        (Cdr, "cdr_20_45_kwh.json", "credit", True, "", "needs credit_reference_id"),
        (
            Cdr,
            "cdr_20_45_kwh.json",
            "end_date_time",
            "2024-06-03T07:00:00Z",
            "",
            "end_date_time is before start_date_time",
        ),
        (Cdr, "cdr_20_45_kwh.json", "last_updated", 1717400000, "last_updated", "RFC 3339"),
    ],
)
def test_bad_objects_name_the_field_and_the_reason(
    *, model: Any, name: str, path: str, value: Any, field: str, reason: str
) -> None:
    with pytest.raises(ContractViolation) as caught:
        validate(model, _broken(name, path, value))
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_files_hold_one_object_an_array_or_an_ocpi_response() -> None:
    tariff = load("tariff_flat_and_energy.json")
    assert objects_in(tariff) == [tariff]
    assert objects_in([tariff, tariff]) == [tariff, tariff]
    response = {"data": [tariff], "status_code": 1000, "timestamp": "2024-05-01T00:00:00Z"}
    assert objects_in(response) == [tariff]
    with pytest.raises(ContractViolation, match="expected an OCPI object"):
        objects_in("a string")
    with pytest.raises(ContractViolation, match="invalid JSON"):
        decode("{not json")
