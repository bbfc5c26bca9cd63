"""The Tariff aggregate and its terms: what a kWh, a minute, a session and idling cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eventsourcing.domain import Aggregate

from domain.creation import create, trigger
from domain.errors import InvalidValueError
from domain.ids import tariff_aggregate_id
from domain.money import (
    currency_exponent,
    require_decimal,
    require_minor_units,
    require_whole_number,
)

# The name of the energy price that applies outside every time-of-day window.
STANDARD_WINDOW = "standard"
_MINUTES_PER_DAY = 24 * 60


def _parse_hhmm(value: Any, what: str) -> time:
    if isinstance(value, time):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = time.fromisoformat(value)
        except ValueError:
            raise InvalidValueError(f"{what} must be HH:MM local time, got {value!r}") from None
    else:
        raise InvalidValueError(f"{what} must be HH:MM local time, got {type(value).__name__}")
    if parsed.tzinfo is not None or parsed.second or parsed.microsecond:
        raise InvalidValueError(f"{what} must be a whole minute without offset, got {value!r}")
    return parsed


def _minute_of_day(value: time) -> int:
    return value.hour * 60 + value.minute


@dataclass(frozen=True)
class EnergyWindow:
    """A daily local-time window with its own energy price, e.g. peak 17:00-21:00.

    A window whose end is not after its start wraps past midnight (22:00-06:00).
    """

    name: str
    starts_at: time
    ends_at: time
    price_per_kwh: Decimal

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or self.name == STANDARD_WINDOW:
            raise InvalidValueError(
                f"a window needs a name other than {STANDARD_WINDOW!r}, got {self.name!r}"
            )
        object.__setattr__(self, "starts_at", _parse_hhmm(self.starts_at, "window start"))
        object.__setattr__(self, "ends_at", _parse_hhmm(self.ends_at, "window end"))
        if self.starts_at == self.ends_at:
            raise InvalidValueError(f"window {self.name!r} starts and ends at the same time")
        require_decimal(self.price_per_kwh, f"window {self.name!r} price_per_kwh")

    def minutes(self) -> set[int]:
        """The minutes of the local day this window covers."""
        start, end = _minute_of_day(self.starts_at), _minute_of_day(self.ends_at)
        if start < end:
            return set(range(start, end))
        return set(range(start, _MINUTES_PER_DAY)) | set(range(end))

    def contains(self, local: time) -> bool:
        start, end = self.starts_at, self.ends_at
        moment = local.replace(tzinfo=None)
        if start < end:
            return start <= moment < end
        return moment >= start or moment < end

    def to_primitive(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "starts_at": self.starts_at.strftime("%H:%M"),
            "ends_at": self.ends_at.strftime("%H:%M"),
            "price_per_kwh": self.price_per_kwh,
        }

    @classmethod
    def from_primitive(cls, data: dict[str, Any]) -> EnergyWindow:
        return cls(
            name=data["name"],
            starts_at=data["starts_at"],
            ends_at=data["ends_at"],
            price_per_kwh=Decimal(data["price_per_kwh"]),
        )


@dataclass(frozen=True)
class TariffTerms:
    """The prices of one tariff version. Rates are Decimal major units; fees are minor units."""

    currency: str
    price_per_kwh: Decimal
    vat_rate: Decimal
    price_per_minute: Decimal = Decimal(0)
    session_fee_minor: int = 0
    idle_fee_per_minute: Decimal = Decimal(0)
    idle_grace_minutes: int = 0
    timezone: str | None = None
    energy_windows: tuple[EnergyWindow, ...] = field(default=())

    def __post_init__(self) -> None:
        currency_exponent(self.currency)
        require_decimal(self.price_per_kwh, "price_per_kwh")
        require_decimal(self.price_per_minute, "price_per_minute")
        require_decimal(self.idle_fee_per_minute, "idle_fee_per_minute")
        require_decimal(self.vat_rate, "vat_rate")
        if self.vat_rate >= 1:
            raise InvalidValueError(f"vat_rate is a fraction (0.19 for 19%), got {self.vat_rate}")
        require_minor_units(self.session_fee_minor, "session_fee")
        require_whole_number(self.idle_grace_minutes, "idle_grace_minutes", unit=" of minutes")
        object.__setattr__(self, "energy_windows", tuple(self.energy_windows))
        if self.energy_windows:
            self._check_windows()
        elif self.timezone is not None:
            self.zone()

    def _check_windows(self) -> None:
        if self.timezone is None:
            raise InvalidValueError(
                "time-of-day windows need an IANA timezone (e.g. Europe/Berlin) to read "
                "local time in"
            )
        self.zone()
        covered: set[int] = set()
        names: set[str] = set()
        for window in self.energy_windows:
            if not isinstance(window, EnergyWindow):
                raise InvalidValueError("energy_windows must hold EnergyWindow values")
            if window.name in names:
                raise InvalidValueError(f"window name {window.name!r} is used twice")
            names.add(window.name)
            minutes = window.minutes()
            if covered & minutes:
                raise InvalidValueError(f"window {window.name!r} overlaps another window")
            covered |= minutes

    def zone(self) -> ZoneInfo:
        """The tariff's IANA timezone; UTC when the tariff has no windows and no zone."""
        try:
            return ZoneInfo(self.timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidValueError(
                f"unknown IANA timezone {self.timezone!r} (e.g. Europe/Berlin)"
            ) from None

    def energy_price_at(self, moment: datetime) -> tuple[str, Decimal]:
        """The window name and energy price that apply at ``moment`` (local tariff time)."""
        local = moment.astimezone(self.zone()).time()
        # Windows are whole minutes, so the minute of the day decides; a table instead of a
        # scan of every window keeps pricing linear in the boundaries a session crosses.
        window = self._window_by_minute.get(_minute_of_day(local))
        if window is None:
            return STANDARD_WINDOW, self.price_per_kwh
        return window.name, window.price_per_kwh

    @cached_property
    def _window_by_minute(self) -> dict[int, EnergyWindow]:
        return {minute: window for window in self.energy_windows for minute in window.minutes()}

    def to_primitive(self) -> dict[str, Any]:
        """A dict of JSON-transcodable values, frozen into events."""
        return {
            "currency": self.currency,
            "price_per_kwh": self.price_per_kwh,
            "vat_rate": self.vat_rate,
            "price_per_minute": self.price_per_minute,
            "session_fee_minor": self.session_fee_minor,
            "idle_fee_per_minute": self.idle_fee_per_minute,
            "idle_grace_minutes": self.idle_grace_minutes,
            "timezone": self.timezone,
            "energy_windows": [window.to_primitive() for window in self.energy_windows],
        }

    @classmethod
    def from_primitive(cls, data: dict[str, Any]) -> TariffTerms:
        """The terms of their primitive form, parsed and checked once per distinct form: a
        session reads its tariff's terms when it starts and again when it stops, and a
        time zone with energy windows makes a parse cost tens of microseconds. The terms
        are frozen, so one parse serves every caller. Keyed by repr(), which keeps apart
        what parses differently ('0.20' and '0.2', None and 'None')."""
        key = repr(data)
        terms = _PARSED_TERMS.get(key)
        if terms is None:
            terms = cls._parse(data)
            if len(_PARSED_TERMS) >= PARSED_TERMS_KEPT:
                _PARSED_TERMS.clear()
            _PARSED_TERMS[key] = terms
        return terms

    @classmethod
    def _parse(cls, data: dict[str, Any]) -> TariffTerms:
        return cls(
            currency=data["currency"],
            price_per_kwh=Decimal(data["price_per_kwh"]),
            vat_rate=Decimal(data["vat_rate"]),
            price_per_minute=Decimal(data["price_per_minute"]),
            session_fee_minor=int(data["session_fee_minor"]),
            idle_fee_per_minute=Decimal(data["idle_fee_per_minute"]),
            idle_grace_minutes=int(data["idle_grace_minutes"]),
            timezone=data["timezone"],
            energy_windows=tuple(EnergyWindow.from_primitive(w) for w in data["energy_windows"]),
        )


# Parsed terms by the repr() of their primitive form (TariffTerms.from_primitive); bounded:
# emptied when full, which a ledger of fewer distinct tariff versions never is.
PARSED_TERMS_KEPT = 1024
_PARSED_TERMS: dict[str, TariffTerms] = {}


class Tariff(Aggregate):
    """A published tariff. Each publication is a new version; old versions stay readable."""

    class Published(Aggregate.Created):
        """The first version of a tariff."""

        tariff_id: str
        tariff_version: int
        terms: dict[str, Any]
        occurred_at: datetime

        def apply(self, aggregate: Tariff) -> None:
            aggregate.tariff_id = self.tariff_id
            aggregate._add_version(self.tariff_version, self.terms, self.occurred_at)

    class Revised(Aggregate.Event):
        """A later publication of the same tariff: a new version, the old ones kept."""

        tariff_version: int
        terms: dict[str, Any]
        occurred_at: datetime

        def apply(self, aggregate: Tariff) -> None:
            aggregate._add_version(self.tariff_version, self.terms, self.occurred_at)

    def __init__(self) -> None:
        self.tariff_id = ""
        self.tariff_version = 0
        self.terms_by_version: dict[int, dict[str, Any]] = {}
        self.published_at_by_version: dict[int, datetime] = {}

    def _add_version(self, tariff_version: int, terms: dict[str, Any], at: datetime) -> None:
        self.tariff_version = tariff_version
        self.terms_by_version[tariff_version] = terms
        self.published_at_by_version[tariff_version] = at

    def version_in_force_at(self, moment: datetime) -> int:
        """The latest version published at or before ``moment``.

        Messages can arrive out of order, so "the current version" is not good enough for a
        session that started before a revision was published. A session dated before the
        first publication (clock skew between upstream systems) gets version 1.
        """
        in_force = [v for v, at in self.published_at_by_version.items() if at <= moment]
        return max(in_force, default=1)

    @classmethod
    def publish(cls, tariff_id: str, terms: TariffTerms, occurred_at: datetime) -> Tariff:
        return create(
            cls,
            cls.Published,
            id=tariff_aggregate_id(tariff_id),
            tariff_id=tariff_id,
            tariff_version=1,
            terms=terms.to_primitive(),
            occurred_at=occurred_at,
        )

    def revise(self, terms: TariffTerms, occurred_at: datetime) -> None:
        trigger(
            self,
            self.Revised,
            tariff_version=self.tariff_version + 1,
            terms=terms.to_primitive(),
            occurred_at=occurred_at,
        )

    @property
    def terms(self) -> TariffTerms:
        """The terms of the current version."""
        return TariffTerms.from_primitive(self.terms_by_version[self.tariff_version])

    def terms_at_version(self, tariff_version: int) -> TariffTerms:
        return TariffTerms.from_primitive(self.terms_by_version[tariff_version])
