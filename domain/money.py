"""Money as integer minor units of an ISO 4217 currency, and half-up rounding rules."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from domain.errors import CurrencyMismatchError, InvalidValueError, UnknownCurrencyError

# ISO 4217 minor-unit exponents. Only currencies an operator plausibly bills in; adding one
# is a one-line change, guessing an exponent silently would misprice by a factor of 10.
CURRENCY_EXPONENTS: dict[str, int] = {
    "EUR": 2,
    "USD": 2,
    "GBP": 2,
    "CHF": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "CZK": 2,
    "HUF": 2,
    "RON": 2,
    "CAD": 2,
    "AUD": 2,
    "NZD": 2,
    "CNY": 2,
    "INR": 2,
    "BRL": 2,
    "MXN": 2,
    "ZAR": 2,
    "SGD": 2,
    "HKD": 2,
    "JPY": 0,
    "KRW": 0,
    "ISK": 0,
    "CLP": 0,
    "BHD": 3,
    "KWD": 3,
    "OMR": 3,
    "JOD": 3,
    "TND": 3,
}


def currency_exponent(code: str) -> int:
    """The number of minor-unit digits of an ISO 4217 currency code."""
    try:
        return CURRENCY_EXPONENTS[code]
    except (KeyError, TypeError):
        raise UnknownCurrencyError(
            f"unknown currency {code!r}: use an ISO 4217 code such as EUR, JPY or BHD"
        ) from None


def require_whole_number(
    value: Any, what: str, *, unit: str = "", allow_negative: bool = False
) -> int:
    """Return ``value`` if it is an int (never a float or bool), else raise InvalidValueError."""
    # bool is an int subclass; True as an amount is a bug upstream, not one cent.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValueError(f"{what} must be an integer{unit}, got {type(value).__name__}")
    if value < 0 and not allow_negative:
        raise InvalidValueError(f"{what} must not be negative, got {value}")
    return value


def require_minor_units(value: Any, what: str, *, allow_negative: bool = False) -> int:
    """Return ``value`` if it is an int amount in minor units, else raise InvalidValueError."""
    return require_whole_number(
        value, what, unit=" number of minor units", allow_negative=allow_negative
    )


def require_decimal(value: Any, what: str, *, allow_negative: bool = False) -> Decimal:
    """Return ``value`` if it is a finite Decimal, else raise InvalidValueError."""
    if not isinstance(value, Decimal):
        raise InvalidValueError(
            f"{what} must be a Decimal (send rates as decimal strings), got {type(value).__name__}"
        )
    if not value.is_finite():
        raise InvalidValueError(f"{what} must be a finite number, got {value}")
    if value < 0 and not allow_negative:
        raise InvalidValueError(f"{what} must not be negative, got {value}")
    return value


def round_half_up(value: Fraction) -> int:
    """Round an exact rational to the nearest integer, ties away from zero.

    Works on Fraction so that quantities like seconds/60 stay exact: a Decimal division
    would round at 28 digits first and could turn an exact tie into a value just below it.
    """
    return round_ratio_half_up(value.numerator, value.denominator)


def round_ratio_half_up(numerator: int, denominator: int) -> int:
    """round_half_up(numerator / denominator) for denominator > 0, in integers: the same
    whether or not the ratio is in lowest terms, so products need not be Fractions."""
    # floor(|n/d| + 1/2): scaling n and d by the same k > 0 does not change it.
    rounded = (2 * abs(numerator) + denominator) // (2 * denominator)
    return rounded if numerator >= 0 else -rounded


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in integer minor units of one currency (cents for EUR, yen for JPY)."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        require_minor_units(self.minor, "amount", allow_negative=True)
        currency_exponent(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def from_major(cls, amount: Decimal, currency: str) -> Money:
        """Money from a major-unit Decimal (``Decimal("12.345")`` EUR), rounded half-up."""
        require_decimal(amount, "amount", allow_negative=True)
        scale = 10 ** currency_exponent(currency)
        return cls(round_half_up(Fraction(amount) * scale), currency)

    @property
    def exponent(self) -> int:
        return currency_exponent(self.currency)

    def to_major(self) -> Decimal:
        """The amount in major units, exact (``Money(1234, "EUR").to_major() == 12.34``)."""
        return Decimal(self.minor).scaleb(-self.exponent)

    def _same_currency(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise InvalidValueError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatchError(
                f"cannot combine {self.currency} with {other.currency}: "
                "convert explicitly before adding"
            )

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.minor <= other.minor

    def __gt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.minor > other.minor

    def __ge__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.minor >= other.minor

    def __str__(self) -> str:
        return f"{self.to_major():f} {self.currency}"


def sum_money(amounts: list[Money], currency: str) -> Money:
    """Sum amounts of one currency; an empty list is zero in ``currency``."""
    total = Money.zero(currency)
    for amount in amounts:
        total = total + amount
    return total
