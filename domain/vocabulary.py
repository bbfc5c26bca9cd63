"""The words of the billing ledger, defined once: the upstream message types, payment
methods, refund reasons, and the statuses of payments and refunds. The contract, the
domain, the projections and the command line all take them from here."""

from __future__ import annotations

from enum import StrEnum


class MessageType(StrEnum):
    """The ``type`` of an upstream message (contract version 1)."""

    TARIFF_PUBLISHED = "tariff.published"
    SESSION_STARTED = "session.started"
    SESSION_STOPPED = "session.stopped"
    PAYMENT_AUTHORIZED = "payment.authorized"
    PAYMENT_CAPTURED = "payment.captured"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_VOIDED = "payment.voided"
    REFUND_REQUESTED = "refund.requested"
    REFUND_APPROVED = "refund.approved"
    REFUND_REJECTED = "refund.rejected"
    REFUND_ISSUED = "refund.issued"
    REFUND_FAILED = "refund.failed"


class PaymentMethod(StrEnum):
    CARD = "card"
    RFID = "rfid"
    APP = "app"
    WALLET = "wallet"


class RefundReason(StrEnum):
    FAILED_SESSION = "failed_session"
    OVERCHARGE = "overcharge"
    SERVICE_QUALITY = "service_quality"
    DUPLICATE = "duplicate"
    OTHER = "other"


class PaymentStatus(StrEnum):
    AUTHORISED = "authorised"
    CAPTURED = "captured"
    FAILED = "failed"
    DECLINED = "declined"
    VOIDED = "voided"


class RefundStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    ISSUED = "issued"
    FAILED = "failed"

    @property
    def is_open(self) -> bool:
        """Still waiting for a decision or for the money to move."""
        return self in (RefundStatus.REQUESTED, RefundStatus.APPROVED)
