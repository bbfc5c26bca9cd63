"""Money: minor units, currencies and their exponents, half-up rounding, no floats."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import CurrencyMismatchError, InvalidValueError, UnknownCurrencyError
from domain.money import (
    Money,
    currency_exponent,
    round_half_up,
    round_ratio_half_up,
    sum_money,
)


@pytest.mark.parametrize(
    ("code", "exponent"),
    [("EUR", 2), ("USD", 2), ("GBP", 2), ("CHF", 2), ("SEK", 2), ("JPY", 0), ("BHD", 3)],
)
def test_currency_exponents(code: str, exponent: int) -> None:
    assert currency_exponent(code) == exponent
    assert currency_exponent("KWD") == 3


def test_unknown_currency_is_rejected_with_a_hint() -> None:
    with pytest.raises(UnknownCurrencyError, match="ISO 4217"):
        Money(100, "EURO")


def test_adding_same_currency() -> None:
    assert Money(150, "EUR") + Money(275, "EUR") == Money(425, "EUR")
    assert Money(150, "EUR") - Money(275, "EUR") == Money(-125, "EUR")
    assert sum_money([Money(1, "JPY"), Money(2, "JPY")], "JPY") == Money(3, "JPY")
    assert sum_money([], "EUR") == Money.zero("EUR")


def test_adding_different_currencies_is_an_error() -> None:
    with pytest.raises(CurrencyMismatchError):
        Money(100, "EUR") + Money(100, "USD")
    with pytest.raises(CurrencyMismatchError):
        _ = Money(100, "EUR") < Money(100, "GBP")


@pytest.mark.parametrize("bad", [1.5, 1.0, Decimal("1"), "100", True])
def test_money_rejects_anything_but_int_minor_units(bad: object) -> None:
    with pytest.raises(InvalidValueError):
        Money(bad, "EUR")  # type: ignore[arg-type]


def test_floats_never_become_money() -> None:
    with pytest.raises(InvalidValueError):
        Money.from_major(0.1, "EUR")  # type: ignore[arg-type]


def test_from_major_rounds_half_up_to_the_currency_minor_unit() -> None:
    assert Money.from_major(Decimal("12.345"), "EUR") == Money(1235, "EUR")
    assert Money.from_major(Decimal("12.344"), "EUR") == Money(1234, "EUR")
    assert Money.from_major(Decimal("99.5"), "JPY") == Money(100, "JPY")
    assert Money.from_major(Decimal("1.0005"), "BHD") == Money(1001, "BHD")
    assert Money(1234, "EUR").to_major() == Decimal("12.34")
    assert str(Money(5, "BHD")) == "0.005 BHD"


def test_round_half_up_is_exact_on_fractions() -> None:
    assert round_half_up(Fraction(1, 2)) == 1
    assert round_half_up(Fraction(-1, 2)) == -1
    assert round_half_up(Fraction(49, 100)) == 0
    # 2 s at 0.15/min is exactly half a cent: a 28-digit Decimal of 2/60 would round down.
    assert round_half_up(Fraction(2, 60) * Fraction("0.15") * 100) == 1


@given(
    st.integers(-(10**30), 10**30),
    st.integers(1, 10**12),
    st.integers(1, 10**6),
)
def test_a_ratio_rounds_as_its_fraction_whatever_its_terms(
    numerator: int, denominator: int, scale: int
) -> None:
    expected = round_half_up(Fraction(numerator, denominator))
    assert round_ratio_half_up(numerator, denominator) == expected
    assert round_ratio_half_up(numerator * scale, denominator * scale) == expected
