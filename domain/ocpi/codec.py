"""OCPI 2.2.1 Tariff and CDR JSON (already validated) into the engine's values, and back to text.

The ledger keeps each OCPI object as the JSON text it arrived in, numbers written exactly,
so a CDR can be re-priced from the ledger alone; this module reads that text again. It
trusts its input's shape (consumers/ocpi_contract.py validated it on the way in) and
only enforces what the engine relies on (the model's own checks). Numbers may be JSON
numbers read as Decimal or decimal strings; DateTimes without a zone are UTC, as OCPI says.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from domain.ocpi import model as ocpi


def loads(text: str) -> Any:
    """OCPI JSON text with every number read exactly (Decimal), never through a float."""
    return json.loads(text, parse_float=Decimal)


def dumps(document: Any) -> str:
    """JSON text of decoded OCPI JSON, each number written as it was read (Decimal text)."""
    if isinstance(document, Decimal):
        return str(document)
    if isinstance(document, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dumps(v)}" for k, v in document.items()) + "}"
    if isinstance(document, list | tuple):
        return "[" + ",".join(dumps(v) for v in document) + "]"
    return json.dumps(document)


def _number(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _optional_number(value: Any) -> Decimal | None:
    return None if value is None else _number(value)


def moment(value: Any) -> datetime:
    found = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found


def _optional_moment(value: Any) -> datetime | None:
    return None if value is None else moment(value)


def _price(value: Mapping[str, Any] | None) -> ocpi.OcpiPrice | None:
    if value is None:
        return None
    return ocpi.OcpiPrice(_number(value["excl_vat"]), _optional_number(value.get("incl_vat")))


def _restrictions(found: Mapping[str, Any] | None) -> ocpi.Restrictions | None:
    if found is None:
        return None

    def clock(name: str) -> time | None:
        text = found.get(name)
        return None if text is None else time.fromisoformat(str(text))

    def day(name: str) -> date | None:
        text = found.get(name)
        return None if text is None else date.fromisoformat(str(text))

    def whole(name: str) -> int | None:
        value = found.get(name)
        return None if value is None else int(value)

    return ocpi.Restrictions(
        start_time=clock("start_time"),
        end_time=clock("end_time"),
        start_date=day("start_date"),
        end_date=day("end_date"),
        min_kwh=_optional_number(found.get("min_kwh")),
        max_kwh=_optional_number(found.get("max_kwh")),
        min_current=_optional_number(found.get("min_current")),
        max_current=_optional_number(found.get("max_current")),
        min_power=_optional_number(found.get("min_power")),
        max_power=_optional_number(found.get("max_power")),
        min_duration=whole("min_duration"),
        max_duration=whole("max_duration"),
        day_of_week=tuple(found.get("day_of_week") or ()),
        reservation=found.get("reservation"),
    )


def tariff(document: Mapping[str, Any]) -> ocpi.Tariff:
    """The engine's view of an OCPI Tariff object."""
    elements = tuple(
        ocpi.TariffElement(
            price_components=tuple(
                ocpi.PriceComponent(
                    type=component["type"],
                    price=_number(component["price"]),
                    step_size=int(component["step_size"]),
                    vat=_optional_number(component.get("vat")),
                )
                for component in element["price_components"]
            ),
            restrictions=_restrictions(element.get("restrictions")),
        )
        for element in document["elements"]
    )
    return ocpi.Tariff(
        country_code=document["country_code"],
        party_id=document["party_id"],
        id=document["id"],
        currency=document["currency"],
        elements=elements,
        min_price=_price(document.get("min_price")),
        max_price=_price(document.get("max_price")),
        start_date_time=_optional_moment(document.get("start_date_time")),
        end_date_time=_optional_moment(document.get("end_date_time")),
    )


def cdr(document: Mapping[str, Any]) -> ocpi.Cdr:
    """The engine's view of an OCPI CDR object."""
    periods = tuple(
        ocpi.ChargingPeriod(
            start_date_time=moment(period["start_date_time"]),
            dimensions=tuple(
                ocpi.CdrDimension(d["type"], _number(d["volume"])) for d in period["dimensions"]
            ),
            tariff_id=period.get("tariff_id"),
        )
        for period in document["charging_periods"]
    )
    total_cost = _price(document["total_cost"])
    assert total_cost is not None  # a required field of every CDR
    return ocpi.Cdr(
        country_code=document["country_code"],
        party_id=document["party_id"],
        id=document["id"],
        start_date_time=moment(document["start_date_time"]),
        end_date_time=moment(document["end_date_time"]),
        currency=document["currency"],
        charging_periods=periods,
        total_cost=total_cost,
        total_energy=_number(document["total_energy"]),
        total_time=_number(document["total_time"]),
        total_fixed_cost=_price(document.get("total_fixed_cost")),
        total_energy_cost=_price(document.get("total_energy_cost")),
        total_time_cost=_price(document.get("total_time_cost")),
        total_parking_time=_optional_number(document.get("total_parking_time")),
        total_parking_cost=_price(document.get("total_parking_cost")),
        total_reservation_cost=_price(document.get("total_reservation_cost")),
        tariff_ids=tuple(str(t["id"]) for t in document.get("tariffs") or ()),
        credit=bool(document.get("credit")),
        credit_reference_id=document.get("credit_reference_id"),
    )
