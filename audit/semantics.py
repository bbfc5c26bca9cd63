"""The business facts an auditor expects of the events, beyond balanced books.

A forged or mistaken event can be perfectly balanced and still be wrong: a session priced a
second time, a capture above its authorised hold, a refund paid out twice, a roaming CDR
priced twice or reversed by anything but the exact opposite of its postings, or postings
that do not say what the event says (a total of 526 posted as 1). Each is checked here against
what the earlier events of the same aggregate established; the expected postings of an
event come from the domain's own journal builders (domain/postings.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from audit.scan import ScannedRecord
from audit.spill import DEFAULT_CAPACITY, SpillFile, SpillMap
from domain import postings as journal
from domain.errors import DomainError

Found = Callable[[str, str], None]  # (check name, reason)

SESSIONS = "sessions"
PAYMENTS = "payments"
REFUNDS = "refunds"
POSTINGS = "postings"
CDRS = "cdrs"


@dataclass
class _Payment:
    payment_id: str | None = None
    hold_minor: int | None = None
    currency: str | None = None
    captured_at_id: int | None = None


class BusinessFacts:
    """Feed (record, decoded state) in ledger order; reports what contradicts the facts.

    What it remembers per aggregate lives in SpillMaps of `spill`, `capacity` in memory each.
    """

    def __init__(self, spill: SpillFile, capacity: int = DEFAULT_CAPACITY) -> None:
        self._session_ids: SpillMap[str] = SpillMap(spill, capacity)
        # aggregate id -> (notification id, total) of its first Priced event
        self._priced: SpillMap[tuple[int | None, Any]] = SpillMap(spill, capacity)
        self._payments: SpillMap[_Payment] = SpillMap(spill, capacity)
        self._refund_ids: SpillMap[str] = SpillMap(spill, capacity)
        self._issued: SpillMap[int | None] = SpillMap(spill, capacity)
        # roaming CDR aggregate id -> every posting it carried so far (a reversal undoes them)
        self._cdr_postings: SpillMap[list[dict[str, Any]]] = SpillMap(spill, capacity)

    def check(self, record: ScannedRecord, name: str, state: dict[str, Any], found: Found) -> None:
        aggregate_id = record.originator_id
        if name == "ChargingSession.Started":
            self._session_ids[aggregate_id] = str(state.get("session_id"))
        elif name == "ChargingSession.Priced":
            self._session_priced(record, aggregate_id, state, found)
        elif name == "Payment.Authorised":
            self._payments[aggregate_id] = _Payment(
                _text(state.get("payment_id")),
                _whole(state.get("hold_minor")),
                _text(state.get("currency")),
            )
            self._postings(name, state, found, journal.hold_placed, "hold_minor", "currency")
        elif name == "Payment.Captured":
            self._captured(record, aggregate_id, state, found)
        elif name in ("Payment.Failed", "Payment.Voided"):
            payment = self._payments.get(aggregate_id, _Payment())
            if payment.hold_minor is not None and payment.currency is not None:
                state = {**state, "hold_minor": payment.hold_minor, "currency": payment.currency}
                self._postings(name, state, found, journal.hold_released, "hold_minor", "currency")
        elif name == "Refund.Requested":
            self._refund_ids[aggregate_id] = str(state.get("refund_id"))
        elif name == "Refund.Issued":
            self._refund_issued(record, aggregate_id, state, found)
        elif name.startswith("RoamingCdr."):
            self._roaming_cdr(name, aggregate_id, state, found)

    def _roaming_cdr(
        self, name: str, aggregate_id: str, state: dict[str, Any], found: Found
    ) -> None:
        posted = self._cdr_postings.setdefault(aggregate_id, [])
        if name == "RoamingCdr.Priced":
            if posted:
                found(CDRS, f"roaming CDR {aggregate_id} is priced a second time")
                return
            self._postings(
                name,
                state,
                found,
                journal.cdr_priced,
                "total_excl_vat_minor",
                "total_incl_vat_minor",
                "currency",
            )
        elif name == "RoamingCdr.Reconciled":
            billed, repriced = (
                _whole(state.get("billed_minor")),
                _whole(state.get("repriced_minor")),
            )
            difference = _whole(state.get("difference_minor"))
            if None in (billed, repriced) or difference != (billed or 0) - (repriced or 0):
                found(
                    CDRS,
                    f"{name}: difference {difference} is not billed {billed} - re-priced "
                    f"{repriced}",
                )
                return
            state = {**state, "within_tolerance": state.get("status") == "exact"}
            self._postings(
                name,
                state,
                found,
                journal.cdr_reconciled,
                "difference_minor",
                "within_tolerance",
                "currency",
            )
        elif name == "RoamingCdr.Reversed":
            state = {**state, "reversed": list(posted)}
            self._postings(name, state, found, journal.reversal, "reversed")
        carried = state.get("postings")
        if isinstance(carried, list):
            posted.extend(p for p in carried if _well_formed(p))
            self._cdr_postings[aggregate_id] = posted  # stored again: it may spill to disk

    def _session_priced(
        self, record: ScannedRecord, aggregate_id: str, state: dict[str, Any], found: Found
    ) -> None:
        session = self._session_ids.get(aggregate_id, aggregate_id)
        total = state.get("total_minor")
        first = self._priced.get(aggregate_id)
        if first is not None:
            found(
                SESSIONS,
                f"session {session} is priced a second time (total {total}; it was priced at "
                f"notification id {first[0]} with total {first[1]}): a session has one price, "
                "a correction is a refund",
            )
            return
        self._priced[aggregate_id] = (record.notification_id, total)
        subtotal, vat = _whole(state.get("subtotal_minor")), _whole(state.get("vat_minor"))
        if None not in (subtotal, vat) and _whole(total) != (subtotal or 0) + (vat or 0):
            found(
                SESSIONS,
                f"session {session}'s total {total} is not its subtotal {subtotal} + VAT {vat}",
            )
            return
        items = state.get("line_items")
        if isinstance(items, list) and subtotal is not None:
            amounts = [_whole(item.get("amount_minor")) for item in items if isinstance(item, dict)]
            whole = [amount for amount in amounts if amount is not None]
            if len(whole) == len(items) and sum(whole) != subtotal:
                found(
                    SESSIONS,
                    f"session {session}'s line items add up to {sum(whole)}, not its "
                    f"subtotal {subtotal}",
                )
                return
        self._postings(
            "ChargingSession.Priced",
            state,
            found,
            journal.session_priced,
            "total_minor",
            "subtotal_minor",
            "vat_minor",
            "currency",
        )

    def _captured(
        self, record: ScannedRecord, aggregate_id: str, state: dict[str, Any], found: Found
    ) -> None:
        payment = self._payments.get(aggregate_id)
        name = f"payment {payment.payment_id}" if payment and payment.payment_id else "a payment"
        captured = _whole(state.get("captured_minor"))
        if payment is None or payment.hold_minor is None:
            found(PAYMENTS, f"{name} is captured without an authorised hold")
            return
        if captured is not None and captured > payment.hold_minor:
            found(
                PAYMENTS,
                f"{name} is captured for {captured}, beyond its authorised hold of "
                f"{payment.hold_minor}",
            )
            return
        if state.get("hold_minor") != payment.hold_minor:
            found(
                PAYMENTS,
                f"{name}'s capture states a hold of {state.get('hold_minor')}; it was "
                f"authorised with {payment.hold_minor}",
            )
            return
        released = state.get("released_minor")
        if (
            released is not None
            and captured is not None
            and released != payment.hold_minor - captured
        ):
            found(
                PAYMENTS,
                f"{name}'s capture releases {released} of its hold; {payment.hold_minor} held - "
                f"{captured} captured = {payment.hold_minor - captured}",
            )
            return
        payment.captured_at_id = record.notification_id
        self._postings(
            "Payment.Captured",
            state,
            found,
            journal.payment_captured,
            "captured_minor",
            "hold_minor",
            "currency",
        )

    def _refund_issued(
        self, record: ScannedRecord, aggregate_id: str, state: dict[str, Any], found: Found
    ) -> None:
        refund = self._refund_ids.get(aggregate_id, aggregate_id)
        if aggregate_id in self._issued:
            found(
                REFUNDS,
                f"refund {refund} is issued a second time (first at notification id "
                f"{self._issued[aggregate_id]}): the customer would be paid twice",
            )
            return
        self._issued[aggregate_id] = record.notification_id
        self._postings(
            "Refund.Issued", state, found, journal.refund_issued, "amount_minor", "currency"
        )

    def _postings(
        self,
        name: str,
        state: dict[str, Any],
        found: Found,
        builder: Callable[..., list[dict[str, Any]]],
        *fields: str,
    ) -> None:
        """The event's postings must be the journal entry its own amounts make."""
        carried = state.get("postings")
        if not isinstance(carried, list) or not all(_well_formed(p) for p in carried):
            return  # the postings check names malformed entries itself
        values = [state.get(name_) for name_ in fields]
        try:
            expected = builder(*values)
        except (DomainError, ValueError, TypeError, KeyError) as error:
            amounts = dict(zip(fields, values, strict=True))
            found(POSTINGS, f"{name}'s amounts {amounts} cannot be posted ({error})")
            return
        if _entries(carried) != _entries(expected):
            found(
                POSTINGS,
                f"{name}'s postings {_describe(carried)} do not match the event "
                f"({', '.join(f'{f}={v}' for f, v in zip(fields, values, strict=True))} "
                f"posts {_describe(expected)})",
            )


def _entries(postings: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    return Counter(
        (p["account"], p["direction"], p["amount_minor"], p["currency"]) for p in postings
    )


def _describe(postings: list[dict[str, Any]]) -> str:
    return (
        "["
        + ", ".join(f"{p['direction']} {p['account']} {p['amount_minor']}" for p in postings)
        + "]"
    )


def _well_formed(posting: Any) -> bool:
    return (
        isinstance(posting, dict)
        and {"account", "direction", "amount_minor", "currency"} <= set(posting)
        and _whole(posting["amount_minor"]) is not None
    )


def _whole(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
