"""The audit trail of a session, payment or refund: its events and its relatives', in order.

Relations live in the events themselves (a payment names its session, a refund its
payment), so the trail reads the ledger twice: once to learn who is related, once to
collect their events in ledger order. No read model is needed, so it works offline too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from audit.event_state import StateNotJson, decode_state, event_name
from audit.scan import LedgerScan, ScannedRecord
from domain.ids import (
    payment_aggregate_id,
    refund_aggregate_id,
    session_aggregate_id,
    settlement_aggregate_id,
)

# Events that name a relative; only these are decoded on the first pass.
_LINKING_EVENTS = frozenset(
    {"ChargingSession.Started", "Payment.Authorised", "Payment.Declined", "Refund.Requested"}
)
# Bulky or internal fields that a one-line summary of an event leaves out.
_NOT_KEY_FIELDS = frozenset(
    {
        "timestamp",
        "originator_topic",
        "occurred_at",
        "started_at",
        "stopped_at",
        "postings",
        "tariff_terms",
        "line_items",
        "terms",
    }
)
TRAIL_COLUMNS = (
    "notification_id",
    "offset",
    "recorded_at",
    "occurred_at",
    "kind",
    "id",
    "event",
    "details",
)


class UnknownTrailId(LookupError):
    """No session, payment or refund in the ledger has the id the auditor asked for."""


@dataclass(frozen=True)
class TrailEntry:
    notification_id: int | None
    offset: int | None
    recorded_at: str | None
    occurred_at: str | None
    kind: str
    id: str
    event: str
    details: str

    def row(self) -> dict[str, Any]:
        return {column: getattr(self, column) for column in TRAIL_COLUMNS}


@dataclass
class Trail:
    """What the id turned out to be, its relatives, and every event of them in order."""

    upstream_id: str
    kinds: list[str]
    sessions: set[str] = field(default_factory=set)
    payments: set[str] = field(default_factory=set)
    refunds: set[str] = field(default_factory=set)
    entries: list[TrailEntry] = field(default_factory=list)


@dataclass
class _Links:
    """Who names whom, learned on the first pass."""

    existing: set[str] = field(default_factory=set)
    session_of_payment: dict[str, str] = field(default_factory=dict)
    payment_of_refund: dict[str, str] = field(default_factory=dict)


def audit_trail(scan: LedgerScan, upstream_id: str) -> Trail:
    """The trail of the session, payment or refund with this upstream id (S-.., P-.., R-..)."""
    links = _learn_links(scan.records())
    candidates = {
        "session": str(session_aggregate_id(upstream_id)),
        "payment": str(payment_aggregate_id(upstream_id)),
        "refund": str(refund_aggregate_id(upstream_id)),
    }
    kinds = [kind for kind, aggregate in candidates.items() if aggregate in links.existing]
    if not kinds:
        raise UnknownTrailId(
            f"no session, payment or refund with id {upstream_id!r} in {scan.description} "
            "(ids are the upstream ones: S-..., P-..., R-...)"
        )
    trail = Trail(upstream_id, kinds)
    for kind in kinds:
        _relate(trail, kind, upstream_id, links)
    wanted = _aggregates(trail)
    trail.entries = [
        _entry(record, *wanted[record.originator_id])
        for record in scan.records()
        if record.originator_id in wanted
    ]
    return trail


def sharded_trail(scans: Sequence[LedgerScan], upstream_id: str) -> tuple[int, Trail]:
    """The trail on the shard that holds the id (a session, its payments and refunds live on
    one shard), with that shard's number; UnknownTrailId if no shard does."""
    for shard, scan in enumerate(scans):
        try:
            return shard, audit_trail(scan, upstream_id)
        except UnknownTrailId:
            if shard == len(scans) - 1:
                raise
    raise UnknownTrailId(f"no ledger to look for {upstream_id!r} in")


def _learn_links(records: Iterator[ScannedRecord]) -> _Links:
    links = _Links()
    for record in records:
        if record.topic is None or event_name(record.topic) not in _LINKING_EVENTS:
            continue
        try:
            state = decode_state(record.state)
        except StateNotJson:
            continue
        links.existing.add(record.originator_id)
        name = event_name(record.topic)
        if name in ("Payment.Authorised", "Payment.Declined"):
            payment_id, session_id = state.get("payment_id"), state.get("session_id")
            if isinstance(payment_id, str) and isinstance(session_id, str):
                links.session_of_payment[payment_id] = session_id
        elif name == "Refund.Requested":
            refund_id, payment_id = state.get("refund_id"), state.get("payment_id")
            if isinstance(refund_id, str) and isinstance(payment_id, str):
                links.payment_of_refund[refund_id] = payment_id
    return links


def _relate(trail: Trail, kind: str, upstream_id: str, links: _Links) -> None:
    if kind == "session":
        trail.sessions.add(upstream_id)
        payments = {p for p, s in links.session_of_payment.items() if s == upstream_id}
        trail.payments |= payments
        trail.refunds |= {r for r, p in links.payment_of_refund.items() if p in payments}
    elif kind == "payment":
        trail.payments.add(upstream_id)
        if upstream_id in links.session_of_payment:
            trail.sessions.add(links.session_of_payment[upstream_id])
        trail.refunds |= {r for r, p in links.payment_of_refund.items() if p == upstream_id}
    else:
        trail.refunds.add(upstream_id)
        payment_id = links.payment_of_refund.get(upstream_id)
        if payment_id is not None:
            trail.payments.add(payment_id)
            if payment_id in links.session_of_payment:
                trail.sessions.add(links.session_of_payment[payment_id])


def _aggregates(trail: Trail) -> dict[str, tuple[str, str]]:
    """Aggregate id -> (kind, upstream id) of everything on the trail."""
    wanted: dict[str, tuple[str, str]] = {}
    for session_id in trail.sessions:
        wanted[str(session_aggregate_id(session_id))] = ("session", session_id)
        wanted[str(settlement_aggregate_id(session_id))] = ("settlement", session_id)
    for payment_id in trail.payments:
        wanted[str(payment_aggregate_id(payment_id))] = ("payment", payment_id)
    for refund_id in trail.refunds:
        wanted[str(refund_aggregate_id(refund_id))] = ("refund", refund_id)
    return wanted


def _entry(record: ScannedRecord, kind: str, upstream_id: str) -> TrailEntry:
    name = event_name(record.topic) if record.topic else "(damaged record)"
    try:
        state = decode_state(record.state)
    except StateNotJson as error:
        state = {}
        details = f"({error})"
    else:
        details = ", ".join(
            f"{key}={_shown(value)}"
            for key, value in state.items()
            if key not in _NOT_KEY_FIELDS and value != upstream_id
        )
    recorded = record.recorded_at.isoformat() if record.recorded_at else state.get("timestamp")
    occurred = state.get("occurred_at") or state.get("started_at") or state.get("stopped_at")
    return TrailEntry(
        notification_id=record.notification_id,
        offset=record.offset,
        recorded_at=str(recorded) if recorded is not None else None,
        occurred_at=str(occurred) if occurred is not None else None,
        kind=kind,
        id=upstream_id,
        event=name,
        details=details,
    )


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        return "{...}" if isinstance(value, dict) else f"[{len(value)}]"
    return str(value)
