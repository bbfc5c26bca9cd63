"""The JSON documents the API answers with; amounts are integer minor units with the
currency, energy is a decimal string (exact), times are RFC 3339 with an offset."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, get_args

from pydantic import BaseModel, Field, field_serializer
from pydantic_core import to_json

from projections.databases.port import JsonFormat

JSON = "application/json"


class PaymentSummary(BaseModel):
    """One payment of the payment history with its session."""

    payment_id: str
    created_at: datetime | None = None
    status: str | None = None
    customer_id: str | None = None
    station_id: str | None = None
    connector_id: str | None = None
    session_id: str | None = None
    session_started_at: datetime | None = None
    session_ended_at: datetime | None = None
    energy_kwh: Decimal | None = Field(default=None, description="kWh, as an exact decimal")
    tariff_id: str | None = None
    tariff_version: int | None = None
    currency: str | None = Field(default=None, description="ISO 4217 code of every amount")
    authorised_minor: int | None = None
    captured_minor: int | None = None
    refunded_minor: int | None = None
    net_minor: int | None = None
    session_total_minor: int | None = None
    reconciliation: str | None = None
    discrepancy_minor: int | None = None
    method: str | None = None
    failure_reason: str | None = None

    @field_serializer("energy_kwh")
    def _exact(self, value: Decimal | None) -> str | None:
        return None if value is None else str(value)


class PaymentPage(BaseModel):
    """A page of payments, newest first; `next` is the URL of the following page."""

    items: list[PaymentSummary]
    next_cursor: str | None = None
    next: str | None = None


def _json_format(annotation: Any) -> JsonFormat:
    kinds = {annotation, *get_args(annotation)}
    if datetime in kinds:
        return JsonFormat.TIME
    return JsonFormat.DECIMAL if Decimal in kinds else JsonFormat.PLAIN


# A history page's columns (the summary's fields, each a payment_history column, line items
# left out) and how each is written.
SUMMARY_FORMATS = {
    name: _json_format(field.annotation) for name, field in PaymentSummary.model_fields.items()
}


def page_json(items: list[bytes], next_cursor: str | None, next_link: str | None) -> bytes:
    """A ``PaymentPage`` document from its items, each already the JSON of a summary (its
    fields, in its order: `AsyncDatabase.json_rows` with ``SUMMARY_FORMATS``): the same
    bytes as ``PaymentPage(...).model_dump_json()`` without a model or a dict per row."""
    return b"".join(
        (
            b'{"items":[',
            b",".join(items),
            b'],"next_cursor":',
            to_json(next_cursor),
            b',"next":',
            to_json(next_link),
            b"}",
        )
    )


class Refund(BaseModel):
    """One refund as the refund status view knows it."""

    refund_id: str
    status: str | None = None
    payment_id: str | None = None
    customer_id: str | None = None
    station_id: str | None = None
    session_id: str | None = None
    amount_minor: int | None = None
    currency: str | None = None
    reason: str | None = None
    note: str | None = None
    requested_at: datetime | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None
    automatic: bool | None = None
    decision_note: str | None = None
    rejection_reason: str | None = None
    issued_at: datetime | None = None
    processor_ref: str | None = None
    failed_at: datetime | None = None
    failure_reason: str | None = None
    age_seconds: int | None = Field(
        default=None, description="how long an open refund has waited, or a closed one took"
    )


class RefundList(BaseModel):
    items: list[Refund]


class PaymentDetail(PaymentSummary):
    """A payment with its priced line items, capture, reconciliation and refunds."""

    line_items: list[dict[str, Any]] = Field(default_factory=list)
    refunds: list[Refund] = Field(default_factory=list)


class TrailEntry(BaseModel):
    notification_id: int | None
    offset: int | None
    recorded_at: str | None
    occurred_at: str | None
    kind: str
    id: str
    event: str
    details: str


class Trail(BaseModel):
    """Every ledger event of a session, payment or refund and of its relatives, in order."""

    id: str
    kinds: list[str]
    entries: list[TrailEntry]


class ProjectionLag(BaseModel):
    position: int | None
    lag: int | None
    ahead: bool = Field(
        default=False,
        description="Past the ledger's head (on a shard, at least): this read model is "
        "another ledger's (a wrong topic prefix, a ledger recreated under it); rebuild it.",
    )


class ShardReadiness(BaseModel):
    """One ledger shard: its head and each projection's position and lag on it."""

    shard: int
    ledger: str
    ledger_position: int | None
    projections: dict[str, ProjectionLag]


class Readiness(BaseModel):
    """Ready when the read-model database answers; each projection's lag in events (summed
    over the shards of a sharded ledger, each of which `shards` reports)."""

    ready: bool
    views_database: str
    analytics_database: str
    ledger: str
    ledger_position: int | None
    projections: dict[str, ProjectionLag]
    shards: list[ShardReadiness] | None = None


class Health(BaseModel):
    status: str = "ok"


def refund_document(row: dict[str, Any]) -> Refund:
    age = row.pop("age", None)
    seconds = int(age.total_seconds()) if isinstance(age, timedelta) else None
    return Refund(
        **{key: value for key, value in row.items() if key in Refund.model_fields},
        age_seconds=seconds,
    )
