"""Realistic upstream traffic, deterministic by seed, for the demo, tests and benchmarks.

Stations differ in popularity; arrivals follow daily peaks (morning and evening commutes,
flatter weekends); tariffs include time-of-day prices, per-minute prices and idle fees.
Captures are priced with the domain's own pricing, so a capture differs from the session
total only where the generator means it to (an overcharge or an undercharge). Payment
failures, failed sessions and refunds of every reason and outcome are mixed in.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from domain.pricing import price_session
from domain.tariff import EnergyWindow, TariffTerms
from domain.vocabulary import MessageType, PaymentMethod, RefundReason

Message = dict[str, Any]

# Relative arrival rate per local hour, weekday and weekend (commute peaks on weekdays).
_WEEKDAY_PROFILE = [1, 1, 1, 1, 1, 2, 4, 8, 10, 7, 5, 5, 6, 5, 5, 6, 8, 10, 11, 9, 6, 4, 2, 1]
_WEEKEND_PROFILE = [1, 1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 9, 8, 8, 7, 7, 7, 6, 5, 4, 3, 2, 1]


# Cards twice as likely as each other method.
_METHOD_MIX = [
    PaymentMethod.CARD,
    PaymentMethod.CARD,
    PaymentMethod.APP,
    PaymentMethod.RFID,
    PaymentMethod.WALLET,
]


@dataclass(frozen=True)
class TariffPlan:
    tariff_id: str
    message: Message
    terms: TariffTerms


def _tariffs() -> list[TariffPlan]:
    plans = [
        {
            "tariff_id": "T-STANDARD",
            "currency": "EUR",
            "price_per_kwh": "0.39",
            "session_fee": 50,
            "vat_rate": "0.19",
        },
        {
            "tariff_id": "T-TIME-OF-DAY",
            "currency": "EUR",
            "price_per_kwh": "0.29",
            "idle_fee_per_minute": "0.10",
            "idle_grace_minutes": 15,
            "vat_rate": "0.19",
            "timezone": "Europe/Berlin",
            "energy_windows": [
                {"name": "peak", "starts_at": "17:00", "ends_at": "21:00", "price_per_kwh": "0.59"}
            ],
        },
        {
            "tariff_id": "T-FAST",
            "currency": "EUR",
            "price_per_kwh": "0.59",
            "price_per_minute": "0.05",
            "idle_fee_per_minute": "0.40",
            "idle_grace_minutes": 5,
            "vat_rate": "0.19",
        },
    ]
    result = []
    for plan in plans:
        window_list: list[dict[str, str]] = plan.get("energy_windows", [])  # type: ignore[assignment]
        windows = tuple(
            EnergyWindow(
                name=w["name"],
                starts_at=time.fromisoformat(w["starts_at"]),
                ends_at=time.fromisoformat(w["ends_at"]),
                price_per_kwh=Decimal(w["price_per_kwh"]),
            )
            for w in window_list
        )
        terms = TariffTerms(
            currency=str(plan["currency"]),
            price_per_kwh=Decimal(str(plan["price_per_kwh"])),
            vat_rate=Decimal(str(plan["vat_rate"])),
            price_per_minute=Decimal(str(plan.get("price_per_minute", "0"))),
            session_fee_minor=int(plan.get("session_fee", 0)),  # type: ignore[call-overload]
            idle_fee_per_minute=Decimal(str(plan.get("idle_fee_per_minute", "0"))),
            idle_grace_minutes=int(plan.get("idle_grace_minutes", 0)),  # type: ignore[call-overload]
            timezone=plan.get("timezone"),  # type: ignore[arg-type]
            energy_windows=windows,
        )
        result.append(TariffPlan(str(plan["tariff_id"]), dict(plan), terms))
    return result


@dataclass(frozen=True)
class Station:
    station_id: str
    connectors: int
    sessions_per_day: float
    tariff: TariffPlan
    power_kw: int


@dataclass(frozen=True)
class TrafficShape:
    """How much traffic: the defaults give a few hundred sessions a day."""

    stations: int = 8
    customers: int = 150
    days: int = 1
    start: date = date(2026, 3, 2)  # a Monday
    payment_failure_rate: float = 0.03
    failed_session_rate: float = 0.03
    overcharge_rate: float = 0.04
    undercharge_rate: float = 0.02
    service_refund_rate: float = 0.03
    duplicate_refund_rate: float = 0.01


def _stations(rng: random.Random, shape: TrafficShape, tariffs: list[TariffPlan]) -> list[Station]:
    stations = []
    for n in range(shape.stations):
        # A long tail: a couple of busy hubs, several ordinary sites, a few quiet ones.
        popularity = 60 / (n + 1) ** 0.9
        fast = n % 3 == 2
        stations.append(
            Station(
                station_id=f"ST-{n + 1:03d}",
                connectors=4 if fast else 2,
                sessions_per_day=max(2.0, popularity),
                tariff=tariffs[2] if fast else tariffs[n % 2],
                power_kw=150 if fast else 11,
            )
        )
    return stations


class _Ids:
    def __init__(self) -> None:
        self.counter = 0

    def event(self) -> str:
        self.counter += 1
        return f"evt-{self.counter:08d}"


def _at(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def generate(seed: int = 7, shape: TrafficShape | None = None) -> list[Message]:
    """The upstream messages of the given traffic, in the order they occurred."""
    return list(stream(seed, shape))


def stream(seed: int = 7, shape: TrafficShape | None = None) -> Iterator[Message]:
    """The messages of ``generate``, in the same order, one at a time: memory holds only
    the few days of messages still pending, so a caller can take the first N of a very
    long traffic (a shape of many days) without generating the rest.

    Generation runs visit by visit; no message of a later visit occurs before that visit's
    day starts (its floor), so every pending message older than the floor is final. Ties
    keep their generation order, as the stable sort of ``generate`` always did."""
    pending: list[tuple[str, int, Message]] = []
    order = itertools.count()
    for floor, message in _messages(seed, shape or TrafficShape()):
        while pending and pending[0][0] < floor:
            yield heapq.heappop(pending)[2]
        heapq.heappush(pending, (message["occurred_at"], next(order), message))
    while pending:
        yield heapq.heappop(pending)[2]


def _messages(seed: int, shape: TrafficShape) -> Iterator[tuple[str, Message]]:
    """Each message in generation order, with a floor: no message after it occurs earlier."""
    rng = random.Random(seed)
    ids = _Ids()
    tariffs = _tariffs()
    stations = _stations(rng, shape, tariffs)
    published_at = datetime.combine(shape.start, time(0), tzinfo=UTC) - timedelta(days=30)
    for plan in tariffs:
        yield (
            _at(published_at),
            {
                "type": MessageType.TARIFF_PUBLISHED,
                "event_id": ids.event(),
                "occurred_at": _at(published_at),
                **plan.message,
            },
        )
    customers = [f"C-{n + 1:05d}" for n in range(shape.customers)]
    # Regulars charge often, most customers now and then. Cumulative once: the same draws
    # as weights= gives, without summing every customer's weight per session.
    customer_weights = list(
        itertools.accumulate(1 / (n + 1) ** 0.7 for n in range(shape.customers))
    )
    hour_weights = {
        id(profile): list(itertools.accumulate(profile))
        for profile in (_WEEKDAY_PROFILE, _WEEKEND_PROFILE)
    }
    session_number = 0
    for day_offset in range(shape.days):
        day = shape.start + timedelta(days=day_offset)
        profile = _WEEKEND_PROFILE if day.weekday() >= 5 else _WEEKDAY_PROFILE
        floor = _at(datetime.combine(day, time(0), tzinfo=UTC))
        for station in stations:
            count = max(
                0, round(rng.gauss(station.sessions_per_day, station.sessions_per_day**0.5))
            )
            for _ in range(count):
                session_number += 1
                hour = rng.choices(range(24), cum_weights=hour_weights[id(profile)])[0]
                started = datetime.combine(day, time(hour), tzinfo=UTC) + timedelta(
                    seconds=rng.randrange(3600)
                )
                customer = rng.choices(customers, cum_weights=customer_weights)[0]
                visit = _Visit(rng, ids, shape, station, customer, started, session_number)
                for message in visit.messages():
                    yield floor, message


@dataclass
class _Visit:
    """One customer's session at one station: the messages upstream sends about it."""

    rng: random.Random
    ids: _Ids
    shape: TrafficShape
    station: Station
    customer: str
    started: datetime
    number: int

    def messages(self) -> Iterator[Message]:
        rng, station = self.rng, self.station
        session_id = f"S-{self.number:07d}"
        self.payment_id = f"P-{self.number:07d}"
        self.meter_start = rng.randrange(0, 5_000_000)
        if rng.random() < self.shape.failed_session_rate:
            charging = timedelta(seconds=rng.randrange(30, 300))
            self.energy_wh = 0
        else:
            fast = station.power_kw > 50
            minutes = rng.randrange(15, 50) if fast else rng.randrange(30, 180)
            charging = timedelta(minutes=minutes, seconds=rng.randrange(60))
            average_kw = station.power_kw * rng.uniform(0.4, 0.9)
            self.energy_wh = int(average_kw * 1000 * charging.total_seconds() / 3600)
        idle = timedelta(minutes=rng.choice([0, 0, 0, 2, 10, 25, 45]))
        self.charging_ended = self.started + charging
        self.stopped = self.charging_ended + idle
        yield self._message(
            MessageType.SESSION_STARTED,
            self.started,
            session_id=session_id,
            station_id=station.station_id,
            connector_id=str(rng.randrange(1, station.connectors + 1)),
            customer_id=self.customer,
            tariff_id=station.tariff.tariff_id,
            meter_start_wh=self.meter_start,
        )
        authorised_at = self.started + timedelta(seconds=5)
        payment_failed = rng.random() < self.shape.payment_failure_rate
        self.hold_minor = 15_000 if station.power_kw > 50 else 8_000
        if payment_failed:
            reason = rng.choice(["card_declined", "insufficient_funds", "expired_card"])
            yield self._message(
                MessageType.PAYMENT_FAILED,
                authorised_at,
                payment_id=self.payment_id,
                session_id=session_id,
                reason=reason,
            )
        else:
            yield self._message(
                MessageType.PAYMENT_AUTHORIZED,
                authorised_at,
                payment_id=self.payment_id,
                session_id=session_id,
                amount_minor=self.hold_minor,
                currency=station.tariff.terms.currency,
                method=rng.choice(
                    [
                        PaymentMethod.CARD,
                        PaymentMethod.CARD,
                        PaymentMethod.APP,
                        PaymentMethod.RFID,
                        PaymentMethod.WALLET,
                    ]
                ),
            )
        stop_fields: Message = {
            "session_id": session_id,
            "meter_stop_wh": self.meter_start + self.energy_wh,
            "stop_reason": "ev_error" if self.energy_wh == 0 else "ev_disconnected",
        }
        if idle:
            stop_fields["charging_ended_at"] = _at(self.charging_ended)
        yield self._message(MessageType.SESSION_STOPPED, self.stopped, **stop_fields)
        if not payment_failed:
            yield from self._capture_and_refunds()

    def _message(self, message_type: str, at: datetime, **fields: Any) -> Message:
        return {
            "type": message_type,
            "event_id": self.ids.event(),
            "occurred_at": _at(at),
            **fields,
        }

    def _capture_and_refunds(self) -> Iterator[Message]:
        rng, shape = self.rng, self.shape
        priced = price_session(
            self.station.tariff.terms,
            started_at=self.started,
            stopped_at=self.stopped,
            charging_ended_at=self.charging_ended,
            meter_start_wh=self.meter_start,
            meter_stop_wh=self.meter_start + self.energy_wh,
        )
        total = priced.total_minor
        roll = rng.random()
        overcharge = 0
        if roll < shape.overcharge_rate:
            overcharge = rng.randrange(50, 400)
        elif roll < shape.overcharge_rate + shape.undercharge_rate:
            overcharge = -min(total, rng.randrange(10, 200))
        captured = min(self.hold_minor, total + overcharge)
        captured_at = self.stopped + timedelta(seconds=rng.randrange(10, 120))
        yield self._message(
            MessageType.PAYMENT_CAPTURED,
            captured_at,
            payment_id=self.payment_id,
            amount_minor=captured,
        )
        self.refund_at = captured_at + timedelta(hours=rng.randrange(1, 48))
        self.refunds = 0
        if self.energy_wh == 0 and captured > 0:
            # A failed session: the policy approves it automatically; the processor pays out.
            refund_id, request = self._refund(
                captured, RefundReason.FAILED_SESSION, "no energy delivered"
            )
            yield request
            yield self._payout(refund_id, timedelta(minutes=5))
        elif overcharge > 0 and captured > total:
            refund_id, request = self._refund(captured - total, RefundReason.OVERCHARGE, None)
            yield request
            yield self._payout(refund_id, timedelta(minutes=5))
        elif captured > 0 and rng.random() < shape.service_refund_rate:
            refund_id, request = self._refund(max(1, captured // 4), "service_quality", "slow")
            yield request
            approved = rng.random() < 0.7
            yield self._message(
                MessageType.REFUND_APPROVED if approved else MessageType.REFUND_REJECTED,
                self.refund_at + timedelta(hours=4),
                refund_id=refund_id,
                decided_by=rng.choice(["agent-ana", "agent-ben", "agent-chloe"]),
                **({} if approved else {"note": "usage confirmed by station logs"}),
            )
            if approved:
                yield self._payout(refund_id, timedelta(hours=5))
        elif captured > 0 and rng.random() < shape.duplicate_refund_rate:
            # Asks for more than was captured: the ledger rejects it automatically.
            yield self._refund(captured + 100, RefundReason.DUPLICATE, "charged twice")[1]

    def _refund(self, amount: int, reason: str, note: str | None) -> tuple[str, Message]:
        self.refunds += 1
        refund_id = f"R-{self.number:07d}-{self.refunds}"
        fields: Message = {"refund_id": refund_id, "payment_id": self.payment_id}
        fields.update(amount_minor=amount, reason=reason)
        if note:
            fields["note"] = note
        return refund_id, self._message(MessageType.REFUND_REQUESTED, self.refund_at, **fields)

    def _payout(self, refund_id: str, after: timedelta) -> Message:
        at = self.refund_at + after
        if self.rng.random() < 0.05:
            return self._message(
                MessageType.REFUND_FAILED, at, refund_id=refund_id, reason="card_closed"
            )
        reference = f"re_{self.number:07d}_{self.refunds}"
        return self._message(
            MessageType.REFUND_ISSUED, at, refund_id=refund_id, processor_ref=reference
        )
