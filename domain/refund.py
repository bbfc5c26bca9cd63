"""The Refund aggregate: requested, then approved or rejected, then issued or failed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate

from domain import postings
from domain.creation import create, trigger
from domain.errors import RefundRuleViolation
from domain.ids import refund_aggregate_id
from domain.vocabulary import RefundStatus

# Who decided a refund the application decided on its own (auto-approval or auto-rejection).
SYSTEM = "system"


class Refund(Aggregate):
    """A request to give back part or all of a captured payment."""

    class Requested(Aggregate.Created):
        """A refund was asked for. ``currency`` is None when the payment is unknown."""

        refund_id: str
        payment_id: str
        session_id: str | None
        amount_minor: int
        currency: str | None
        reason: str
        note: str | None
        occurred_at: datetime

        def apply(self, aggregate: Refund) -> None:
            aggregate.refund_id = self.refund_id
            aggregate.payment_id = self.payment_id
            aggregate.session_id = self.session_id
            aggregate.amount_minor = self.amount_minor
            aggregate.currency = self.currency
            aggregate.reason = self.reason
            aggregate.status = RefundStatus.REQUESTED

    class Approved(Aggregate.Event):
        """The refund was approved; ``automatic`` when the refund policy decided it."""

        decided_by: str
        automatic: bool
        note: str | None
        occurred_at: datetime

        def apply(self, aggregate: Refund) -> None:
            aggregate.status = RefundStatus.APPROVED
            aggregate.decided_by = self.decided_by

    class Rejected(Aggregate.Event):
        """The refund was refused by a person, or by the system (``decided_by='system'``)."""

        decided_by: str
        reason: str
        note: str | None
        occurred_at: datetime

        def apply(self, aggregate: Refund) -> None:
            aggregate.status = RefundStatus.REJECTED
            aggregate.decided_by = self.decided_by
            aggregate.rejection_reason = self.reason

    class Issued(Aggregate.Event):
        """The processor paid the refund out."""

        processor_ref: str | None
        amount_minor: int
        currency: str
        occurred_at: datetime
        postings: list[dict[str, Any]]

        def apply(self, aggregate: Refund) -> None:
            aggregate.status = RefundStatus.ISSUED
            aggregate.processor_ref = self.processor_ref

    class Failed(Aggregate.Event):
        """The processor could not pay the refund; its amount is released on the payment."""

        reason: str
        occurred_at: datetime

        def apply(self, aggregate: Refund) -> None:
            aggregate.status = RefundStatus.FAILED
            aggregate.failure_reason = self.reason

    class CommandRejected(Aggregate.Event):
        """A well-formed message for this refund that its state did not allow."""

        message_type: str
        event_id: str
        reason: str
        occurred_at: datetime

    def __init__(self) -> None:
        self.refund_id = ""
        self.payment_id = ""
        self.session_id: str | None = None
        self.amount_minor = 0
        self.currency: str | None = None
        self.reason = ""
        self.status = RefundStatus.REQUESTED
        self.decided_by: str | None = None
        self.rejection_reason: str | None = None
        self.processor_ref: str | None = None
        self.failure_reason: str | None = None

    @classmethod
    def request(
        cls,
        *,
        refund_id: str,
        payment_id: str,
        session_id: str | None,
        amount_minor: int,
        currency: str | None,
        reason: str,
        note: str | None,
        occurred_at: datetime,
    ) -> Refund:
        return create(
            cls,
            cls.Requested,
            id=refund_aggregate_id(refund_id),
            refund_id=refund_id,
            payment_id=payment_id,
            session_id=session_id,
            amount_minor=amount_minor,
            currency=currency,
            reason=reason,
            note=note,
            occurred_at=occurred_at,
        )

    def _require(self, expected: RefundStatus, action: str) -> None:
        if self.status is not expected:
            article = "an" if expected.value[0] in "aeiou" else "a"
            raise RefundRuleViolation(
                f"refund {self.refund_id} is {self.status.value}; only {article} "
                f"{expected.value} refund can be {action}"
            )

    def approve(
        self, *, decided_by: str, note: str | None, occurred_at: datetime, automatic: bool = False
    ) -> None:
        self._require(RefundStatus.REQUESTED, "approved")
        trigger(
            self,
            self.Approved,
            decided_by=decided_by,
            automatic=automatic,
            note=note,
            occurred_at=occurred_at,
        )

    def reject(
        self, *, decided_by: str, reason: str, note: str | None, occurred_at: datetime
    ) -> None:
        self._require(RefundStatus.REQUESTED, "rejected")
        trigger(
            self,
            self.Rejected,
            decided_by=decided_by,
            reason=reason,
            note=note,
            occurred_at=occurred_at,
        )

    def issue(self, *, processor_ref: str | None, occurred_at: datetime) -> None:
        self._require(RefundStatus.APPROVED, "issued")
        assert self.currency is not None  # approval needs a known, captured payment
        trigger(
            self,
            self.Issued,
            processor_ref=processor_ref,
            amount_minor=self.amount_minor,
            currency=self.currency,
            occurred_at=occurred_at,
            postings=postings.refund_issued(self.amount_minor, self.currency),
        )

    def fail(self, *, reason: str, occurred_at: datetime) -> None:
        self._require(RefundStatus.APPROVED, "failed")
        trigger(self, self.Failed, reason=reason, occurred_at=occurred_at)

    def record_rejected_command(
        self, *, message_type: str, event_id: str, reason: str, at: datetime
    ) -> None:
        trigger(
            self,
            self.CommandRejected,
            message_type=message_type,
            event_id=event_id,
            reason=reason,
            occurred_at=at,
        )
