"""The pure projection core: one ledger event in, the row facts it establishes out.

A fact names an entity row by key and the column values one event knows. Columns are
filled as their events arrive and never cleared, so folding the facts of any interleaving
of aggregates gives the same rows (each aggregate's own events are in order in the ledger).
Rows are keyed by aggregate id (text) because later events of an aggregate carry only that;
references between aggregates are derived from the upstream ids with ``domain.ids``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from domain.idempotency import ProcessedMessage
from domain.ids import payment_aggregate_id, session_aggregate_id, tariff_aggregate_id
from domain.ocpi.model import ENERGY
from domain.payment import Payment
from domain.refund import SYSTEM, Refund
from domain.results import Outcome
from domain.roaming_cdr import RoamingCdr
from domain.roaming_location import RoamingLocation
from domain.roaming_tariff import RoamingTariff
from domain.session import ChargingSession
from domain.settlement import SessionSettlement
from domain.tariff import Tariff
from domain.vocabulary import CdrStatus, PaymentStatus, RefundStatus
from projections.entities import Entity, Fact, LedgerEvent

_WH_PER_KWH = Decimal(1000)

_Handler = Callable[[LedgerEvent], list[Fact]]
# The entities each handler's facts may hold, declared on the handler (``ENTITIES_OF``).
_MAKES: dict[_Handler, frozenset[Entity]] = {}


def _makes(*entities: Entity) -> Callable[[_Handler], _Handler]:
    """Declares the entities a handler's facts may hold: a rebuild worker does not decode an
    event whose facts hold none of its read models' (replay/group_decoder.py), so a handler
    that makes more must say so here."""

    def declared(handler: _Handler) -> _Handler:
        _MAKES[handler] = frozenset(entities)
        return handler

    return declared


# For a type whose events mostly make no facts: text that the JSON state of every event of it
# that makes a fact holds, so a rebuild worker leaves a state without it undecoded
# (replay/group_decoder.py). A JSON string value, quoted, as any JSON encoder writes it
# whatever its spacing; a state holding it elsewhere is decoded. It is the spelling of the
# type's one version: once the type has an upcaster the worker decodes every state of it.
STATE_HOLDS: dict[type, bytes] = {
    # Most messages are applied: only a rejected one is a row (``_processed``).
    ProcessedMessage.Recorded: f'"{Outcome.REJECTED.value}"'.encode(),
}


class UnknownLedgerEvent(TypeError):
    """An event type the projections neither show nor knowingly ignore: a new domain event
    needs a decision here, not a silent skip."""


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def kwh(energy_wh: int) -> Decimal:
    """Wh to kWh, exact (three decimal places)."""
    return (Decimal(energy_wh) / _WH_PER_KWH).quantize(Decimal("0.001"))


def _local(moment: datetime, timezone: str | None) -> datetime:
    """Wall-clock time at the station (the tariff's zone), for hour-of-day analytics."""
    return moment.astimezone(ZoneInfo(timezone or "UTC")).replace(tzinfo=None)


def _key(event: Any) -> tuple[str]:
    return (str(event.originator_id),)


def _postings(
    ledger_event: LedgerEvent, kind: str, occurred_at: datetime | None, key: tuple[str]
) -> list[Fact]:
    """The postings of an event of the aggregate ``key`` (its ``_key``, which the caller
    has made already: a UUID's text is spelt in Python, once an event is enough)."""
    event = ledger_event.event
    # What every posting of the event shares, computed once (postings are the most
    # numerous facts of a batch).
    shared = {
        "recorded_at": utc(event.timestamp),
        "occurred_at": utc(occurred_at) if occurred_at else None,
        "event_type": type(event).__qualname__,
        "aggregate_kind": kind,
        "aggregate_key": key[0],
    }
    position = ledger_event.ledger_position
    return [
        Fact(
            Entity.POSTING,
            (position, line_no),
            {
                **shared,
                "account": posting["account"],
                "direction": posting["direction"],
                "amount_minor": int(posting["amount_minor"]),
                "currency": posting["currency"],
            },
        )
        for line_no, posting in enumerate(event.postings, start=1)
    ]


def _rejection(ledger_event: LedgerEvent, kind: str) -> list[Fact]:
    event = ledger_event.event
    return [
        Fact(
            Entity.REJECTION,
            (ledger_event.ledger_position,),
            {
                "aggregate_kind": kind,
                "aggregate_key": str(event.originator_id),
                "message_type": getattr(event, "message_type", "payment.captured"),
                "event_id": event.event_id,
                "reason": event.reason,
                "occurred_at": utc(event.occurred_at),
            },
        )
    ]


# --- tariffs -----------------------------------------------------------------------------


@_makes(Entity.TARIFF_VERSION)
def _tariff_version(ledger_event: LedgerEvent) -> list[Fact]:
    event = ledger_event.event
    terms = event.terms
    values: dict[str, Any] = {
        "currency": terms["currency"],
        "price_per_kwh": Decimal(terms["price_per_kwh"]),
        "price_per_minute": Decimal(terms["price_per_minute"]),
        "session_fee_minor": int(terms["session_fee_minor"]),
        "idle_fee_per_minute": Decimal(terms["idle_fee_per_minute"]),
        "vat_rate": Decimal(terms["vat_rate"]),
        "timezone": terms["timezone"],
        "published_at": utc(event.occurred_at),
    }
    if isinstance(event, Tariff.Published):
        values["tariff_id"] = event.tariff_id
    return [Fact(Entity.TARIFF_VERSION, (str(event.originator_id), event.tariff_version), values)]


# --- sessions ----------------------------------------------------------------------------


@_makes(Entity.SESSION)
def _session_started(ledger_event: LedgerEvent) -> list[Fact]:
    event: ChargingSession.Started = ledger_event.event
    timezone = event.tariff_terms.get("timezone")
    values = {
        "session_id": event.session_id,
        "station_id": event.station_id,
        "connector_id": event.connector_id,
        "customer_id": event.customer_id,
        "tariff_id": event.tariff_id,
        "tariff_key": str(tariff_aggregate_id(event.tariff_id)),
        "tariff_version": event.tariff_version,
        "timezone": timezone,
        "started_at": utc(event.started_at),
        "started_at_local": _local(event.started_at, timezone),
        "meter_start_wh": event.meter_start_wh,
    }
    return [Fact(Entity.SESSION, _key(event), values)]


@_makes(Entity.SESSION)
def _session_stopped(ledger_event: LedgerEvent) -> list[Fact]:
    event: ChargingSession.Stopped = ledger_event.event
    ended = event.charging_ended_at
    values = {
        "stopped_at": utc(event.stopped_at),
        "charging_ended_at": utc(ended) if ended else None,
        "stop_reason": event.stop_reason,
        "meter_stop_wh": event.meter_stop_wh,
    }
    return [Fact(Entity.SESSION, _key(event), values)]


@_makes(Entity.SESSION, Entity.LINE_ITEM, Entity.POSTING)
def _session_priced(ledger_event: LedgerEvent) -> list[Fact]:
    event: ChargingSession.Priced = ledger_event.event
    key = _key(event)
    session_key = key[0]
    currency = event.currency
    values = {
        "currency": currency,
        "line_items": [dict(item) for item in event.line_items],
        "subtotal_minor": event.subtotal_minor,
        "vat_rate": Decimal(event.vat_rate),
        "vat_minor": event.vat_minor,
        "total_minor": event.total_minor,
        "energy_wh": event.energy_wh,
        "energy_kwh": kwh(event.energy_wh),
        "charging_seconds": event.charging_seconds,
        "idle_seconds": event.idle_seconds,
        "billable_idle_seconds": event.billable_idle_seconds,
        "priced_at": utc(event.timestamp),
    }
    line_items = [
        Fact(
            Entity.LINE_ITEM,
            (session_key, line_no),
            {
                "component": item["component"],
                "window_name": item["window"],
                "quantity": Decimal(item["quantity"]),
                "unit": item["unit"],
                "unit_price": Decimal(item["unit_price"]),
                "amount_minor": int(item["amount_minor"]),
                "currency": currency,
            },
        )
        for line_no, item in enumerate(event.line_items, start=1)
    ]
    return [
        Fact(Entity.SESSION, key, values),
        *line_items,
        *_postings(ledger_event, "session", None, key),
    ]


# --- payments ----------------------------------------------------------------------------


def _session_reference(session_id: str | None) -> dict[str, Any]:
    if session_id is None:
        return {}
    return {"session_id": session_id, "session_key": str(session_aggregate_id(session_id))}


@_makes(Entity.PAYMENT, Entity.POSTING)
def _payment_authorised(ledger_event: LedgerEvent) -> list[Fact]:
    event: Payment.Authorised = ledger_event.event
    values = {
        "payment_id": event.payment_id,
        **_session_reference(event.session_id),
        "method": event.method,
        "currency": event.currency,
        "authorised_minor": event.hold_minor,
        "status": PaymentStatus.AUTHORISED.value,
        "created_at": utc(event.occurred_at),
        "authorised_at": utc(event.occurred_at),
    }
    key = _key(event)
    return [
        Fact(Entity.PAYMENT, key, values),
        *_postings(ledger_event, "payment", event.occurred_at, key),
    ]


@_makes(Entity.PAYMENT)
def _payment_declined(ledger_event: LedgerEvent) -> list[Fact]:
    event: Payment.Declined = ledger_event.event
    values = {
        "payment_id": event.payment_id,
        **_session_reference(event.session_id),
        "status": PaymentStatus.DECLINED.value,
        "failure_reason": event.reason,
        "created_at": utc(event.occurred_at),
        "failed_at": utc(event.occurred_at),
    }
    return [Fact(Entity.PAYMENT, _key(event), values)]


@_makes(Entity.PAYMENT, Entity.POSTING)
def _payment_captured(ledger_event: LedgerEvent) -> list[Fact]:
    event: Payment.Captured = ledger_event.event
    values = {
        "status": PaymentStatus.CAPTURED.value,
        "captured_minor": event.captured_minor,
        "released_minor": event.released_minor,
        "captured_at": utc(event.occurred_at),
    }
    key = _key(event)
    return [
        Fact(Entity.PAYMENT, key, values),
        *_postings(ledger_event, "payment", event.occurred_at, key),
    ]


@_makes(Entity.PAYMENT, Entity.POSTING)
def _payment_failed(ledger_event: LedgerEvent) -> list[Fact]:
    event: Payment.Failed = ledger_event.event
    values = {
        "status": PaymentStatus.FAILED.value,
        "failure_reason": event.reason,
        "released_minor": event.released_minor,
        "failed_at": utc(event.occurred_at),
    }
    key = _key(event)
    return [
        Fact(Entity.PAYMENT, key, values),
        *_postings(ledger_event, "payment", event.occurred_at, key),
    ]


@_makes(Entity.PAYMENT, Entity.POSTING)
def _payment_voided(ledger_event: LedgerEvent) -> list[Fact]:
    event: Payment.Voided = ledger_event.event
    values = {
        "status": PaymentStatus.VOIDED.value,
        "failure_reason": event.reason,
        "released_minor": event.released_minor,
        "voided_at": utc(event.occurred_at),
    }
    key = _key(event)
    return [
        Fact(Entity.PAYMENT, key, values),
        *_postings(ledger_event, "payment", event.occurred_at, key),
    ]


@_makes(Entity.PAYMENT)
def _payment_reconciled(ledger_event: LedgerEvent) -> list[Fact]:
    event: Payment.Reconciled = ledger_event.event
    values = {
        "reconciled_total_minor": event.session_total_minor,
        "reconciliation": event.outcome,
        "discrepancy_minor": event.discrepancy_minor,
    }
    return [Fact(Entity.PAYMENT, _key(event), values)]


# --- refunds -----------------------------------------------------------------------------


@_makes(Entity.REFUND)
def _refund_requested(ledger_event: LedgerEvent) -> list[Fact]:
    event: Refund.Requested = ledger_event.event
    values = {
        "refund_id": event.refund_id,
        "payment_id": event.payment_id,
        "payment_key": str(payment_aggregate_id(event.payment_id)),
        **_session_reference(event.session_id),
        "amount_minor": event.amount_minor,
        "currency": event.currency,
        "reason": event.reason,
        "note": event.note,
        "status": RefundStatus.REQUESTED.value,
        "requested_at": utc(event.occurred_at),
    }
    return [Fact(Entity.REFUND, _key(event), values)]


@_makes(Entity.REFUND)
def _refund_approved(ledger_event: LedgerEvent) -> list[Fact]:
    event: Refund.Approved = ledger_event.event
    values = {
        "status": RefundStatus.APPROVED.value,
        "decided_at": utc(event.occurred_at),
        "decided_by": event.decided_by,
        "automatic": event.automatic,
        "decision_note": event.note,
    }
    return [Fact(Entity.REFUND, _key(event), values)]


@_makes(Entity.REFUND)
def _refund_rejected(ledger_event: LedgerEvent) -> list[Fact]:
    event: Refund.Rejected = ledger_event.event
    values = {
        "status": RefundStatus.REJECTED.value,
        "decided_at": utc(event.occurred_at),
        "decided_by": event.decided_by,
        "automatic": event.decided_by == SYSTEM,
        "rejection_reason": event.reason,
        "decision_note": event.note,
        "closed_at": utc(event.occurred_at),
    }
    return [Fact(Entity.REFUND, _key(event), values)]


@_makes(Entity.REFUND, Entity.POSTING)
def _refund_issued(ledger_event: LedgerEvent) -> list[Fact]:
    event: Refund.Issued = ledger_event.event
    values = {
        "status": RefundStatus.ISSUED.value,
        "issued_at": utc(event.occurred_at),
        "issued_minor": event.amount_minor,
        "processor_ref": event.processor_ref,
        "currency": event.currency,
        "closed_at": utc(event.occurred_at),
    }
    key = _key(event)
    return [
        Fact(Entity.REFUND, key, values),
        *_postings(ledger_event, "refund", event.occurred_at, key),
    ]


@_makes(Entity.REFUND)
def _refund_failed(ledger_event: LedgerEvent) -> list[Fact]:
    event: Refund.Failed = ledger_event.event
    values = {
        "status": RefundStatus.FAILED.value,
        "failed_at": utc(event.occurred_at),
        "failure_reason": event.reason,
        "closed_at": utc(event.occurred_at),
    }
    return [Fact(Entity.REFUND, _key(event), values)]


@_makes(Entity.REJECTED_MESSAGE)
def _processed(ledger_event: LedgerEvent) -> list[Fact]:
    """Every rejected message, also those that named no aggregate (a stop for an unknown
    session, a capture without an authorisation): its ProcessedMessage is the one record
    of the rejection they all have."""
    event: ProcessedMessage.Recorded = ledger_event.event
    # A state without this value (STATE_HOLDS) is left undecoded by a rebuild worker.
    if event.outcome != Outcome.REJECTED.value:
        return []
    values = {
        "message_type": event.message_type,
        "reason": event.rejection_reason,
        "recorded_at": utc(event.timestamp),
    }
    return [Fact(Entity.REJECTED_MESSAGE, (event.event_id,), values)]


# --- roaming CDRs (OCPI) -----------------------------------------------------------------


def _cdr(ledger_event: LedgerEvent, values: dict[str, Any], kind: str | None = None) -> list[Fact]:
    event = ledger_event.event
    key = _key(event)
    facts = [Fact(Entity.ROAMING_CDR, key, values)]
    if kind is not None:
        facts.extend(_postings(ledger_event, kind, getattr(event, "occurred_at", None), key))
    return facts


@_makes(Entity.ROAMING_CDR)
def _cdr_received(ledger_event: LedgerEvent) -> list[Fact]:
    event: RoamingCdr.Received = ledger_event.event
    values = {
        "country_code": event.country_code,
        "party_id": event.party_id,
        "cdr_id": event.cdr_id,
        "session_id": event.session_id,
        "location_id": event.location_id,
        "currency": event.currency,
        "started_at": utc(event.start_date_time),
        "ended_at": utc(event.end_date_time),
        "received_at": utc(event.occurred_at),
        "credit": event.credit,
        "credit_reference_id": event.credit_reference_id,
        "status": CdrStatus.CREDIT.value if event.credit else None,
    }
    return _cdr(ledger_event, values)


@_makes(Entity.ROAMING_CDR, Entity.POSTING)
def _cdr_priced(ledger_event: LedgerEvent) -> list[Fact]:
    event: RoamingCdr.Priced = ledger_event.event
    energy = next((d for d in event.dimensions if d["dimension"] == ENERGY), None)
    values = {
        "tariff_id": event.tariff_id,
        "time_zone": event.time_zone,
        "energy_kwh": Decimal(energy["volume"]) if energy else Decimal(0),
        "repriced_excl_vat_minor": event.total_excl_vat_minor,
        "repriced_incl_vat_minor": event.total_incl_vat_minor,
    }
    return _cdr(ledger_event, values, "roaming_cdr")


@_makes(Entity.ROAMING_CDR, Entity.POSTING)
def _cdr_reconciled(ledger_event: LedgerEvent) -> list[Fact]:
    event: RoamingCdr.Reconciled = ledger_event.event
    values = {
        "status": CdrStatus.RECONCILED.value,
        "reconciliation": event.status,
        "billed_minor": event.billed_minor,
        "difference_minor": event.difference_minor,
        "tolerance_minor": event.tolerance_minor,
        "reason": event.reason,
    }
    return _cdr(ledger_event, values, "roaming_cdr")


@_makes(Entity.ROAMING_CDR)
def _cdr_rejected(ledger_event: LedgerEvent) -> list[Fact]:
    event: RoamingCdr.Rejected = ledger_event.event
    values = {
        "status": CdrStatus.REJECTED.value,
        "rejection": event.reason_code,
        "reason": event.reason,
    }
    return _cdr(ledger_event, values)


@_makes(Entity.ROAMING_CDR, Entity.POSTING)
def _cdr_reversed(ledger_event: LedgerEvent) -> list[Fact]:
    event: RoamingCdr.Reversed = ledger_event.event
    values = {
        "status": CdrStatus.REVERSED.value,
        "reversed_by": event.credit_cdr_id,
        "reversed_at": utc(event.occurred_at),
    }
    return _cdr(ledger_event, values, "roaming_cdr")


@_makes(Entity.ROAMING_CDR)
def _credit_applied(ledger_event: LedgerEvent) -> list[Fact]:
    return _cdr(ledger_event, {"status": CdrStatus.CREDIT.value})


def _rejected(kind: str) -> Callable[[LedgerEvent], list[Fact]]:
    return _makes(Entity.REJECTION)(lambda ledger_event: _rejection(ledger_event, kind))


_HANDLERS: dict[type, Callable[[LedgerEvent], list[Fact]]] = {
    Tariff.Published: _tariff_version,
    Tariff.Revised: _tariff_version,
    ChargingSession.Started: _session_started,
    ChargingSession.Stopped: _session_stopped,
    ChargingSession.Priced: _session_priced,
    ChargingSession.CommandRejected: _rejected("session"),
    Payment.Authorised: _payment_authorised,
    Payment.Declined: _payment_declined,
    Payment.Captured: _payment_captured,
    Payment.Failed: _payment_failed,
    Payment.Voided: _payment_voided,
    Payment.Reconciled: _payment_reconciled,
    Payment.CaptureRejected: _rejected("payment"),
    Payment.CommandRejected: _rejected("payment"),
    Refund.Requested: _refund_requested,
    Refund.Approved: _refund_approved,
    Refund.Rejected: _refund_rejected,
    Refund.Issued: _refund_issued,
    Refund.Failed: _refund_failed,
    Refund.CommandRejected: _rejected("refund"),
    ProcessedMessage.Recorded: _processed,
    RoamingCdr.Received: _cdr_received,
    RoamingCdr.Priced: _cdr_priced,
    RoamingCdr.Reconciled: _cdr_reconciled,
    RoamingCdr.Rejected: _cdr_rejected,
    RoamingCdr.Reversed: _cdr_reversed,
    RoamingCdr.CreditApplied: _credit_applied,
}


# Events no read model shows: settlement bookkeeping (its effects are on other aggregates),
# refund budget moves (the Refund's own events say it),
# and OCPI reference data (a roaming CDR's Priced event names the tariff and zone it used).
IGNORED: frozenset[type] = frozenset(
    {
        SessionSettlement.Opened,
        SessionSettlement.SessionPriced,
        SessionSettlement.PaymentCaptured,
        Payment.RefundApproved,
        Payment.RefundReleased,
        RoamingTariff.Recorded,
        RoamingTariff.Updated,
        RoamingLocation.Recorded,
        RoamingLocation.Updated,
    }
)
HANDLED: frozenset[type] = frozenset(_HANDLERS)
# The entities the facts of an event of each known type may hold (none for IGNORED types).
ENTITIES_OF: dict[type, frozenset[Entity]] = {
    **{event_type: frozenset() for event_type in IGNORED},
    **{event_type: _MAKES[handler] for event_type, handler in _HANDLERS.items()},
}


def facts_of(ledger_event: LedgerEvent) -> list[Fact]:
    """The facts one ledger event establishes (none for the IGNORED types)."""
    event_type = type(ledger_event.event)
    handler = _HANDLERS.get(event_type)
    if handler is not None:
        return handler(ledger_event)
    if event_type in IGNORED:
        return []
    raise UnknownLedgerEvent(
        f"ledger event {ledger_event.notification_id} is a {event_type.__qualname__}, which "
        "the projections do not know; add it to projections.facts (handled or IGNORED)"
    )


def facts_of_batch(batch: Sequence[LedgerEvent]) -> list[Fact]:
    return [fact for ledger_event in batch for fact in facts_of(ledger_event)]
