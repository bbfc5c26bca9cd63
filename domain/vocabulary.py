"""The words of the billing ledger, defined once: the upstream message types, payment
methods, refund reasons, and the statuses of payments and refunds. The contract, the
domain, the projections and the command line all take them from here; so do the roaming
CDRs' statuses, reconciliation outcomes and rejection reasons."""

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
    # OCPI 2.2.1 objects wrapped unchanged (consumers/ocpi_messages.py).
    OCPI_TARIFF = "ocpi.tariff"
    OCPI_LOCATION = "ocpi.location"
    OCPI_CDR = "ocpi.cdr"


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


class CdrStatus(StrEnum):
    """Where a roaming CDR stands in the ledger."""

    RECONCILED = "reconciled"  # re-priced and compared with its total_cost
    REJECTED = "rejected"  # could not be re-priced (the reason says why)
    REVERSED = "reversed"  # a credit CDR reversed it
    CREDIT = "credit"  # a credit CDR that reversed its original


class CdrReconciliation(StrEnum):
    """The CDR's total_cost against evledger's re-priced total, within the tolerance."""

    EXACT = "exact"
    OVERCHARGE = "overcharge"
    UNDERCHARGE = "undercharge"


class CdrRejection(StrEnum):
    """Why a roaming CDR was recorded as rejected rather than priced (never guessed)."""

    UNKNOWN_TARIFF = "unknown_tariff"
    AMBIGUOUS_TARIFF = "ambiguous_tariff"
    UNKNOWN_TIME_ZONE = "unknown_time_zone"
    NOT_PRICEABLE = "not_priceable"
    UNKNOWN_ORIGINAL = "unknown_original"
    ALREADY_REVERSED = "already_reversed"


# An overcharged CDR's refund claim (domain/application.py) is a refund of a payment that
# names the CDR, ``ocpi-cdr:<country_code>:<party_id>:<id>`` (also the CDR's routing key
# on a sharded ledger, consumers/routing.py), with refund id ``ocpi-claim:`` and the same.
CDR_CLAIM_PAYMENT_PREFIX = "ocpi-cdr:"
CDR_CLAIM_REFUND_PREFIX = "ocpi-claim:"
