"""The SessionSettlement aggregate: where a session's priced total meets its captures.

Pricing and capture may arrive in either order and from racing writers. Both commands write
this one aggregate, so the later of the two always sees the earlier (a race ends in the
library's IntegrityError and a retry on fresh state) and reconciles the payment.
"""

from __future__ import annotations

from eventsourcing.domain import Aggregate

from domain.creation import create, trigger
from domain.ids import settlement_aggregate_id


class SessionSettlement(Aggregate):
    """The priced total of one session and the payments captured for it."""

    class Opened(Aggregate.Created):
        session_id: str

        def apply(self, aggregate: SessionSettlement) -> None:
            aggregate.session_id = self.session_id

    class SessionPriced(Aggregate.Event):
        total_minor: int
        currency: str

        def apply(self, aggregate: SessionSettlement) -> None:
            aggregate.total_minor = self.total_minor
            aggregate.currency = self.currency

    class PaymentCaptured(Aggregate.Event):
        payment_id: str
        captured_minor: int

        def apply(self, aggregate: SessionSettlement) -> None:
            aggregate.captured_payment_ids.append(self.payment_id)
            aggregate.captured_minor_by_payment[self.payment_id] = self.captured_minor

    def __init__(self) -> None:
        self.session_id = ""
        self.total_minor: int | None = None
        self.currency: str | None = None
        self.captured_payment_ids: list[str] = []
        self.captured_minor_by_payment: dict[str, int] = {}

    @classmethod
    def open(cls, session_id: str) -> SessionSettlement:
        return create(
            cls, cls.Opened, id=settlement_aggregate_id(session_id), session_id=session_id
        )

    @property
    def is_priced(self) -> bool:
        return self.total_minor is not None

    def due_for(self, payment_id: str) -> int:
        """What of the priced total was left for this payment by the payments captured
        before it: a second payment capturing the whole total again is an overcharge."""
        assert self.total_minor is not None
        earlier = 0
        for captured_id in self.captured_payment_ids:
            if captured_id == payment_id:
                break
            earlier += self.captured_minor_by_payment.get(captured_id, 0)
        return max(0, self.total_minor - earlier)

    def record_priced(self, *, total_minor: int, currency: str) -> None:
        trigger(self, self.SessionPriced, total_minor=total_minor, currency=currency)

    def record_capture(self, *, payment_id: str, captured_minor: int) -> None:
        trigger(self, self.PaymentCaptured, payment_id=payment_id, captured_minor=captured_minor)
