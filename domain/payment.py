"""The Payment aggregate: hold, capture, failure, void, reconciliation and refund budget.

The running sum of approved and issued refunds lives here, so "refunds never exceed the
captured amount" is checked inside one aggregate and guarded by its version.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from eventsourcing.domain import Aggregate

from domain import postings
from domain.creation import create, trigger
from domain.errors import PaymentRuleViolation, RefundRuleViolation
from domain.ids import payment_aggregate_id
from domain.vocabulary import PaymentStatus


class ReconciliationOutcome(StrEnum):
    EXACT = "exact"
    OVERCHARGE = "overcharge"
    UNDERCHARGE = "undercharge"
    CURRENCY_MISMATCH = "currency_mismatch"


class Payment(Aggregate):
    """One payment for one session, from pre-authorisation to capture and refunds."""

    class Authorised(Aggregate.Created):
        """A hold of ``hold_minor`` was placed on the customer's payment method."""

        payment_id: str
        session_id: str
        method: str
        currency: str
        hold_minor: int
        occurred_at: datetime
        postings: list[dict[str, Any]]

        def apply(self, aggregate: Payment) -> None:
            aggregate.payment_id = self.payment_id
            aggregate.session_id = self.session_id
            aggregate.method = self.method
            aggregate.currency = self.currency
            aggregate.hold_minor = self.hold_minor
            aggregate.status = PaymentStatus.AUTHORISED

    class Declined(Aggregate.Created):
        """A payment.failed with no earlier authorisation: a declined pre-authorisation."""

        payment_id: str
        session_id: str | None
        reason: str
        occurred_at: datetime

        def apply(self, aggregate: Payment) -> None:
            aggregate.payment_id = self.payment_id
            aggregate.session_id = self.session_id
            aggregate.failure_reason = self.reason
            aggregate.status = PaymentStatus.DECLINED

    class Captured(Aggregate.Event):
        """``captured_minor`` was taken; the rest of the hold (``released_minor``) was freed."""

        captured_minor: int
        hold_minor: int
        released_minor: int
        currency: str
        occurred_at: datetime
        postings: list[dict[str, Any]]

        def apply(self, aggregate: Payment) -> None:
            aggregate.captured_minor = self.captured_minor
            aggregate.status = PaymentStatus.CAPTURED

    class CaptureRejected(Aggregate.Event):
        """A capture request that broke a rule (above the hold, or not authorised)."""

        event_id: str
        amount_minor: int
        hold_minor: int
        reason: str
        occurred_at: datetime

    class Failed(Aggregate.Event):
        """An authorised payment failed; its hold is released."""

        reason: str
        released_minor: int
        occurred_at: datetime
        postings: list[dict[str, Any]]

        def apply(self, aggregate: Payment) -> None:
            aggregate.failure_reason = self.reason
            aggregate.status = PaymentStatus.FAILED

    class Voided(Aggregate.Event):
        """An authorised payment was cancelled before capture; its hold is released."""

        reason: str | None
        released_minor: int
        occurred_at: datetime
        postings: list[dict[str, Any]]

        def apply(self, aggregate: Payment) -> None:
            aggregate.status = PaymentStatus.VOIDED

    class Reconciled(Aggregate.Event):
        """The captured amount compared with the session's priced total.

        ``session_total_minor`` is the part of the total that payments captured earlier for
        the same session left unpaid (the whole total for the first). ``discrepancy_minor``
        is captured minus that: positive is an overcharge, negative an
        undercharge. Recorded once, by whichever of capture and pricing arrives last.
        """

        session_id: str
        session_total_minor: int
        session_currency: str
        captured_minor: int
        currency: str
        discrepancy_minor: int
        outcome: str

        def apply(self, aggregate: Payment) -> None:
            aggregate.reconciliation_outcome = ReconciliationOutcome(self.outcome)
            aggregate.discrepancy_minor = self.discrepancy_minor

    class RefundApproved(Aggregate.Event):
        """A refund was approved against this payment; it now counts against the balance."""

        refund_id: str
        amount_minor: int
        reason: str
        refundable_balance_minor: int

        def apply(self, aggregate: Payment) -> None:
            aggregate.refund_commitments[self.refund_id] = {
                "amount_minor": self.amount_minor,
                "reason": self.reason,
            }

    class RefundReleased(Aggregate.Event):
        """An approved refund failed at the processor; its amount is refundable again."""

        refund_id: str
        amount_minor: int
        refundable_balance_minor: int

        def apply(self, aggregate: Payment) -> None:
            aggregate.refund_commitments.pop(self.refund_id, None)

    class CommandRejected(Aggregate.Event):
        """A well-formed message for this payment that broke a rule, kept with its reason."""

        message_type: str
        event_id: str
        reason: str
        occurred_at: datetime

    def __init__(self) -> None:
        self.payment_id = ""
        self.session_id: str | None = None
        self.method: str | None = None
        self.currency: str | None = None
        self.hold_minor = 0
        self.captured_minor = 0
        self.status = PaymentStatus.AUTHORISED
        self.failure_reason: str | None = None
        self.reconciliation_outcome: ReconciliationOutcome | None = None
        self.discrepancy_minor = 0
        # refund_id -> {"amount_minor": int, "reason": str}, for approved and issued refunds.
        self.refund_commitments: dict[str, dict[str, Any]] = {}

    @classmethod
    def authorise(
        cls,
        *,
        payment_id: str,
        session_id: str,
        method: str,
        currency: str,
        hold_minor: int,
        occurred_at: datetime,
    ) -> Payment:
        return create(
            cls,
            cls.Authorised,
            id=payment_aggregate_id(payment_id),
            payment_id=payment_id,
            session_id=session_id,
            method=method,
            currency=currency,
            hold_minor=hold_minor,
            occurred_at=occurred_at,
            postings=postings.hold_placed(hold_minor, currency),
        )

    @classmethod
    def decline(
        cls, *, payment_id: str, session_id: str | None, reason: str, occurred_at: datetime
    ) -> Payment:
        return create(
            cls,
            cls.Declined,
            id=payment_aggregate_id(payment_id),
            payment_id=payment_id,
            session_id=session_id,
            reason=reason,
            occurred_at=occurred_at,
        )

    # --- capture, failure, void -------------------------------------------------------

    def capture(self, *, event_id: str, amount_minor: int, occurred_at: datetime) -> str | None:
        """Capture, or record a CaptureRejected and return its reason."""
        reason: str | None = None
        if self.status is not PaymentStatus.AUTHORISED:
            reason = f"payment {self.payment_id} is {self.status.value}, not authorised"
        elif amount_minor > self.hold_minor:
            reason = (
                f"capture of {amount_minor} exceeds the authorised hold of {self.hold_minor} "
                f"{self.currency}; capture at most the hold"
            )
        if reason is not None:
            trigger(
                self,
                self.CaptureRejected,
                event_id=event_id,
                amount_minor=amount_minor,
                hold_minor=self.hold_minor,
                reason=reason,
                occurred_at=occurred_at,
            )
            return reason
        currency = self._currency()
        trigger(
            self,
            self.Captured,
            captured_minor=amount_minor,
            hold_minor=self.hold_minor,
            released_minor=self.hold_minor - amount_minor,
            currency=currency,
            occurred_at=occurred_at,
            postings=postings.payment_captured(amount_minor, self.hold_minor, currency),
        )
        return None

    def fail(self, *, reason: str, occurred_at: datetime) -> None:
        if self.status is not PaymentStatus.AUTHORISED:
            raise PaymentRuleViolation(
                f"payment {self.payment_id} is {self.status.value}; only an authorised "
                "payment can fail"
            )
        trigger(
            self,
            self.Failed,
            reason=reason,
            released_minor=self.hold_minor,
            occurred_at=occurred_at,
            postings=postings.hold_released(self.hold_minor, self._currency()),
        )

    def void(self, *, reason: str | None, occurred_at: datetime) -> None:
        if self.status is not PaymentStatus.AUTHORISED:
            raise PaymentRuleViolation(
                f"payment {self.payment_id} is {self.status.value}; only an authorised "
                "payment can be voided"
            )
        trigger(
            self,
            self.Voided,
            reason=reason,
            released_minor=self.hold_minor,
            occurred_at=occurred_at,
            postings=postings.hold_released(self.hold_minor, self._currency()),
        )

    def _currency(self) -> str:
        assert self.currency is not None  # every authorised payment has one
        return self.currency

    # --- reconciliation -----------------------------------------------------------------

    @property
    def is_reconciled(self) -> bool:
        return self.reconciliation_outcome is not None

    def reconcile(
        self, *, session_id: str, session_total_minor: int, session_currency: str
    ) -> None:
        """Compare the capture with the session's total, once; a no-op before capture."""
        if self.status is not PaymentStatus.CAPTURED or self.is_reconciled:
            return
        currency = self._currency()
        if session_currency != currency:
            outcome, discrepancy = ReconciliationOutcome.CURRENCY_MISMATCH, 0
        else:
            discrepancy = self.captured_minor - session_total_minor
            if discrepancy > 0:
                outcome = ReconciliationOutcome.OVERCHARGE
            elif discrepancy < 0:
                outcome = ReconciliationOutcome.UNDERCHARGE
            else:
                outcome = ReconciliationOutcome.EXACT
        trigger(
            self,
            self.Reconciled,
            session_id=session_id,
            session_total_minor=session_total_minor,
            session_currency=session_currency,
            captured_minor=self.captured_minor,
            currency=currency,
            discrepancy_minor=discrepancy,
            outcome=outcome.value,
        )

    @property
    def overcharge_minor(self) -> int:
        """The proven overcharge (0 unless reconciliation found one)."""
        if self.reconciliation_outcome is ReconciliationOutcome.OVERCHARGE:
            return self.discrepancy_minor
        return 0

    # --- refund budget -------------------------------------------------------------------

    @property
    def refunds_committed_minor(self) -> int:
        """The sum of approved and issued refunds."""
        return sum(int(c["amount_minor"]) for c in self.refund_commitments.values())

    @property
    def refundable_balance_minor(self) -> int:
        """What may still be refunded: captured minus approved and issued refunds."""
        if self.status is not PaymentStatus.CAPTURED:
            return 0
        return self.captured_minor - self.refunds_committed_minor

    def overcharge_refundable_minor(self) -> int:
        """The part of a proven overcharge not yet covered by overcharge refunds."""
        covered = sum(
            int(c["amount_minor"])
            for c in self.refund_commitments.values()
            if c["reason"] == "overcharge"
        )
        return max(0, self.overcharge_minor - covered)

    def refund_blocker(self, amount_minor: int) -> str | None:
        """Why a refund of ``amount_minor`` cannot be approved now, or None if it can."""
        if self.status is not PaymentStatus.CAPTURED:
            return (
                f"payment {self.payment_id} is {self.status.value}, not captured; "
                "there is nothing to refund"
            )
        balance = self.refundable_balance_minor
        if amount_minor > balance:
            return (
                f"refund of {amount_minor} exceeds the refundable balance of {balance} "
                f"{self.currency} on payment {self.payment_id}"
            )
        return None

    def approve_refund(self, *, refund_id: str, amount_minor: int, reason: str) -> None:
        blocker = self.refund_blocker(amount_minor)
        if blocker is not None:
            raise RefundRuleViolation(blocker)
        trigger(
            self,
            self.RefundApproved,
            refund_id=refund_id,
            amount_minor=amount_minor,
            reason=reason,
            refundable_balance_minor=self.refundable_balance_minor - amount_minor,
        )

    def release_refund(self, *, refund_id: str) -> None:
        commitment = self.refund_commitments.get(refund_id)
        if commitment is None:
            return
        amount = int(commitment["amount_minor"])
        trigger(
            self,
            self.RefundReleased,
            refund_id=refund_id,
            amount_minor=amount,
            refundable_balance_minor=self.refundable_balance_minor + amount,
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
