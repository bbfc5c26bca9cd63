"""TariffTerms.from_primitive parses each distinct primitive form once, and only that form."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain import tariff
from domain.errors import InvalidValueError
from domain.tariff import EnergyWindow, TariffTerms


def _terms(price: str = "0.35") -> TariffTerms:
    return TariffTerms(
        currency="EUR",
        price_per_kwh=Decimal(price),
        vat_rate=Decimal("0.19"),
        timezone="Europe/Berlin",
        energy_windows=(EnergyWindow("night", "22:00", "06:00", Decimal("0.20")),),
    )


def test_a_form_parsed_again_is_the_same_terms_object() -> None:
    primitive = _terms().to_primitive()
    first = TariffTerms.from_primitive(primitive)
    assert first == _terms()
    assert TariffTerms.from_primitive(dict(primitive)) is first


def test_forms_that_parse_differently_are_kept_apart() -> None:
    # Equal Decimals spelled differently are different terms: their events differ.
    spelled = TariffTerms.from_primitive(_terms("0.350").to_primitive())
    short = TariffTerms.from_primitive(_terms("0.35").to_primitive())
    assert str(spelled.price_per_kwh) == "0.350"
    assert str(short.price_per_kwh) == "0.35"
    assert repr(spelled.to_primitive()) != repr(short.to_primitive())
    # A text 'None' is not the absent time zone, and a bad form still fails every time.
    bad = {**_terms().to_primitive(), "timezone": "None"}
    for _ in range(2):
        with pytest.raises(InvalidValueError):
            TariffTerms.from_primitive(bad)
    plain = {**bad, "timezone": None, "energy_windows": []}
    assert TariffTerms.from_primitive(plain).timezone is None


def test_the_parsed_forms_kept_are_bounded() -> None:
    for number in range(tariff.PARSED_TERMS_KEPT + 10):
        TariffTerms.from_primitive(_terms(f"0.{number:04d}").to_primitive())
        assert len(tariff._PARSED_TERMS) <= tariff.PARSED_TERMS_KEPT
