"""Hand-built ledger records for the audit tests: a small payment-and-refund story."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from audit.scan import ScannedRecord
from domain.ids import payment_aggregate_id, refund_aggregate_id
from store.records import GENESIS_HASH

PAYMENT = str(payment_aggregate_id("P-1"))
REFUND = str(refund_aggregate_id("R-1"))
PAYMENT_TOPIC = "domain.payment:Payment"
REFUND_TOPIC = "domain.refund:Refund"


def posting(account: str, direction: str, amount: Any, currency: str = "EUR") -> dict[str, Any]:
    return {
        "account": account,
        "direction": direction,
        "amount_minor": amount,
        "currency": currency,
    }


def transfer(debit: str, credit: str, amount: int) -> list[dict[str, Any]]:
    return [posting(debit, "debit", amount), posting(credit, "credit", amount)]


def story() -> list[tuple[str, int, str, dict[str, Any]]]:
    """(aggregate id, version, topic, state) of a captured payment with an issued refund."""
    return [
        (
            PAYMENT,
            1,
            f"{PAYMENT_TOPIC}.Authorised",
            {
                "payment_id": "P-1",
                "session_id": "S-1",
                "currency": "EUR",
                "hold_minor": 5000,
                "postings": transfer("authorisation_holds", "customer_holds", 5000),
            },
        ),
        (
            PAYMENT,
            2,
            f"{PAYMENT_TOPIC}.Captured",
            {
                "captured_minor": 1000,
                "hold_minor": 5000,
                "currency": "EUR",
                "postings": transfer("customer_holds", "authorisation_holds", 5000)
                + transfer("processor_clearing", "customer_receivable", 1000),
            },
        ),
        (
            REFUND,
            1,
            f"{REFUND_TOPIC}.Requested",
            {"refund_id": "R-1", "payment_id": "P-1", "amount_minor": 300, "currency": "EUR"},
        ),
        (REFUND, 2, f"{REFUND_TOPIC}.Approved", {"decided_by": "agent"}),
        (
            PAYMENT,
            3,
            f"{PAYMENT_TOPIC}.RefundApproved",
            {"refund_id": "R-1", "amount_minor": 300, "refundable_balance_minor": 700},
        ),
        (
            REFUND,
            3,
            f"{REFUND_TOPIC}.Issued",
            {
                "amount_minor": 300,
                "currency": "EUR",
                "postings": transfer("refunds", "processor_clearing", 300),
            },
        ),
    ]


def state_bytes(state: dict[str, Any]) -> bytes:
    return json.dumps(state, separators=(",", ":")).encode()


def records(
    entries: list[tuple[str, int, str, dict[str, Any]]] | None = None,
    first_id: int = 1,
    chained: bool = True,
) -> list[ScannedRecord]:
    """Records as an honest writer would chain them (ids from first_id, offsets from 0)."""
    built = [
        ScannedRecord(
            position=number + 1,
            offset=number if chained else None,
            notification_id=first_id + number,
            originator_id=originator_id,
            originator_version=version,
            topic=topic,
            state=state_bytes(state),
        )
        for number, (originator_id, version, topic, state) in enumerate(entries or story())
    ]
    return rechain(built) if chained else built


def rechain(found: list[ScannedRecord]) -> list[ScannedRecord]:
    """Recompute every link, as a forger who rewrites the whole chain would."""
    prev_hash = GENESIS_HASH
    chained = []
    for record in found:
        digest = record.content_hash(prev_hash)
        assert digest is not None
        chained.append(replace(record, prev_hash=prev_hash, hash=digest))
        prev_hash = digest
    return chained


def renumber(found: list[ScannedRecord]) -> list[ScannedRecord]:
    """Positions and offsets 1.. / 0.. as read from a copy of the ledger."""
    return [
        replace(record, position=number + 1, offset=number) for number, record in enumerate(found)
    ]
