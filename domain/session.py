"""The ChargingSession aggregate: started, stopped and priced on the tariff frozen at start."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from eventsourcing.domain import Aggregate

from domain import postings
from domain.creation import create, trigger
from domain.errors import MeterReadingError, SessionAlreadyStoppedError, SessionTimelineError
from domain.ids import session_aggregate_id
from domain.pricing import ROUNDING, LineItem, PricedSession, price_session
from domain.tariff import TariffTerms

# The longest session priced (the contract's idle grace is bounded by the same 31 days):
# longer is an upstream error, and it keeps the read models' durations and pricing bounded.
MAX_SESSION_DURATION = timedelta(days=31)


class ChargingSession(Aggregate):
    """One charging session at one connector, billed on the tariff in force at its start."""

    class Started(Aggregate.Created):
        """The session began; ``tariff_terms`` is the tariff version frozen for its pricing."""

        session_id: str
        station_id: str
        connector_id: str
        customer_id: str
        tariff_id: str
        tariff_version: int
        tariff_terms: dict[str, Any]
        meter_start_wh: int
        started_at: datetime

        def apply(self, aggregate: ChargingSession) -> None:
            aggregate.session_id = self.session_id
            aggregate.station_id = self.station_id
            aggregate.connector_id = self.connector_id
            aggregate.customer_id = self.customer_id
            aggregate.tariff_id = self.tariff_id
            aggregate.tariff_version = self.tariff_version
            aggregate.tariff_terms = self.tariff_terms
            aggregate.meter_start_wh = self.meter_start_wh
            aggregate.started_at = self.started_at

    class Stopped(Aggregate.Event):
        """The session ended at ``stopped_at``; charging may have ended earlier (idle time)."""

        meter_stop_wh: int
        stop_reason: str | None
        charging_ended_at: datetime | None
        stopped_at: datetime

        def apply(self, aggregate: ChargingSession) -> None:
            aggregate.meter_stop_wh = self.meter_stop_wh
            aggregate.stop_reason = self.stop_reason
            aggregate.charging_ended_at = self.charging_ended_at
            aggregate.stopped_at = self.stopped_at

    class Priced(Aggregate.Event):
        """The session's price: line items, subtotal, VAT, total, and their postings.

        Version 2 added ``rounding``, the rule its amounts were rounded with; version 1
        events were all priced half-up, which their upcast says.
        """

        class_version = 2

        currency: str
        line_items: list[dict[str, Any]]
        subtotal_minor: int
        vat_rate: Decimal
        vat_minor: int
        total_minor: int
        energy_wh: int
        charging_seconds: int
        idle_seconds: int
        billable_idle_seconds: int
        postings: list[dict[str, Any]]
        rounding: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Before version 2 every price was rounded half-up (domain/pricing.py).
            state["rounding"] = "half-up"

        def apply(self, aggregate: ChargingSession) -> None:
            aggregate.price_rounding = self.rounding
            aggregate.priced = PricedSession(
                currency=self.currency,
                line_items=tuple(LineItem.from_primitive(item) for item in self.line_items),
                subtotal_minor=self.subtotal_minor,
                vat_rate=self.vat_rate,
                vat_minor=self.vat_minor,
                total_minor=self.total_minor,
                energy_wh=self.energy_wh,
                charging_seconds=self.charging_seconds,
                idle_seconds=self.idle_seconds,
                billable_idle_seconds=self.billable_idle_seconds,
            )

    class CommandRejected(Aggregate.Event):
        """A well-formed message for this session that broke a rule, kept with its reason."""

        message_type: str
        event_id: str
        reason: str
        occurred_at: datetime

    def __init__(self) -> None:
        self.session_id = ""
        self.station_id = ""
        self.connector_id = ""
        self.customer_id = ""
        self.tariff_id = ""
        self.tariff_version = 0
        self.tariff_terms: dict[str, Any] = {}
        self.meter_start_wh = 0
        self.started_at: datetime | None = None
        self.meter_stop_wh: int | None = None
        self.stop_reason: str | None = None
        self.charging_ended_at: datetime | None = None
        self.stopped_at: datetime | None = None
        self.priced: PricedSession | None = None
        self.price_rounding: str | None = None

    @classmethod
    def start(
        cls,
        *,
        session_id: str,
        station_id: str,
        connector_id: str,
        customer_id: str,
        tariff_id: str,
        tariff_version: int,
        tariff_terms: TariffTerms,
        meter_start_wh: int,
        started_at: datetime,
    ) -> ChargingSession:
        return create(
            cls,
            cls.Started,
            id=session_aggregate_id(session_id),
            session_id=session_id,
            station_id=station_id,
            connector_id=connector_id,
            customer_id=customer_id,
            tariff_id=tariff_id,
            tariff_version=tariff_version,
            tariff_terms=tariff_terms.to_primitive(),
            meter_start_wh=meter_start_wh,
            started_at=started_at,
        )

    @property
    def is_stopped(self) -> bool:
        return self.stopped_at is not None

    @property
    def frozen_terms(self) -> TariffTerms:
        return TariffTerms.from_primitive(self.tariff_terms)

    def stop(
        self,
        *,
        meter_stop_wh: int,
        stopped_at: datetime,
        stop_reason: str | None = None,
        charging_ended_at: datetime | None = None,
    ) -> None:
        """Stop and price the session, or raise a SessionRuleViolation saying why not."""
        started_at = self.started_at
        assert started_at is not None  # set by Started, the only way to create a session
        if self.is_stopped:
            raise SessionAlreadyStoppedError(
                f"session {self.session_id} already stopped at {self.stopped_at}; "
                "a correction must be a refund, not a second stop"
            )
        if meter_stop_wh < self.meter_start_wh:
            raise MeterReadingError(
                f"meter stop {meter_stop_wh} Wh is below meter start {self.meter_start_wh} Wh "
                f"for session {self.session_id}; check the meter readings"
            )
        if stopped_at < started_at:
            raise SessionTimelineError(
                f"stop at {stopped_at} is before the start at {started_at} "
                f"of session {self.session_id}"
            )
        if stopped_at - started_at > MAX_SESSION_DURATION:
            raise SessionTimelineError(
                f"session {self.session_id} from {started_at} to {stopped_at} is longer than "
                f"the maximum of {MAX_SESSION_DURATION.days} days"
            )
        if charging_ended_at is not None and not started_at <= charging_ended_at <= stopped_at:
            raise SessionTimelineError(
                f"charging_ended_at {charging_ended_at} is outside the session "
                f"{started_at} .. {stopped_at}"
            )
        trigger(
            self,
            self.Stopped,
            meter_stop_wh=meter_stop_wh,
            stop_reason=stop_reason,
            charging_ended_at=charging_ended_at,
            stopped_at=stopped_at,
        )
        priced = price_session(
            self.frozen_terms,
            started_at=started_at,
            stopped_at=stopped_at,
            charging_ended_at=charging_ended_at,
            meter_start_wh=self.meter_start_wh,
            meter_stop_wh=meter_stop_wh,
        )
        trigger(
            self,
            self.Priced,
            currency=priced.currency,
            line_items=[item.to_primitive() for item in priced.line_items],
            subtotal_minor=priced.subtotal_minor,
            vat_rate=priced.vat_rate,
            vat_minor=priced.vat_minor,
            total_minor=priced.total_minor,
            energy_wh=priced.energy_wh,
            charging_seconds=priced.charging_seconds,
            idle_seconds=priced.idle_seconds,
            billable_idle_seconds=priced.billable_idle_seconds,
            postings=postings.session_priced(
                priced.total_minor, priced.subtotal_minor, priced.vat_minor, priced.currency
            ),
            rounding=ROUNDING,
        )

    def reject(self, *, message_type: str, event_id: str, reason: str, at: datetime) -> None:
        trigger(
            self,
            self.CommandRejected,
            message_type=message_type,
            event_id=event_id,
            reason=reason,
            occurred_at=at,
        )
