"""The topics the ledger stores events under, pinned to classes so a rename cannot orphan them.

The eventsourcing library stores each event under its class path ("module:Class.Event")
and, in a Created event, the aggregate's own path. Renaming or moving a class would leave
every stored event pointing at nothing. This table is the contract: each stored topic, as
written once, maps to the class that reads it today. To rename a class, keep its old topic
here pointing at the renamed class and add the new one (tests/unit/domain checks that every
event class's current topic is listed, and the golden ledger that old ones still resolve).
"""

from __future__ import annotations

from eventsourcing.utils import register_topic

from domain.idempotency import ProcessedMessage
from domain.payment import Payment
from domain.refund import Refund
from domain.roaming_cdr import RoamingCdr
from domain.roaming_location import RoamingLocation
from domain.roaming_tariff import RoamingTariff
from domain.session import ChargingSession
from domain.settlement import SessionSettlement
from domain.tariff import Tariff

STORED_TOPICS: dict[str, type] = {
    # Aggregates (the originator_topic of their Created events).
    "domain.idempotency:ProcessedMessage": ProcessedMessage,
    "domain.payment:Payment": Payment,
    "domain.refund:Refund": Refund,
    "domain.session:ChargingSession": ChargingSession,
    "domain.settlement:SessionSettlement": SessionSettlement,
    "domain.tariff:Tariff": Tariff,
    "domain.roaming_cdr:RoamingCdr": RoamingCdr,
    "domain.roaming_location:RoamingLocation": RoamingLocation,
    "domain.roaming_tariff:RoamingTariff": RoamingTariff,
    # Events.
    "domain.idempotency:ProcessedMessage.Recorded": ProcessedMessage.Recorded,
    "domain.payment:Payment.Authorised": Payment.Authorised,
    "domain.payment:Payment.Declined": Payment.Declined,
    "domain.payment:Payment.Captured": Payment.Captured,
    "domain.payment:Payment.CaptureRejected": Payment.CaptureRejected,
    "domain.payment:Payment.Failed": Payment.Failed,
    "domain.payment:Payment.Voided": Payment.Voided,
    "domain.payment:Payment.Reconciled": Payment.Reconciled,
    "domain.payment:Payment.RefundApproved": Payment.RefundApproved,
    "domain.payment:Payment.RefundReleased": Payment.RefundReleased,
    "domain.payment:Payment.CommandRejected": Payment.CommandRejected,
    "domain.refund:Refund.Requested": Refund.Requested,
    "domain.refund:Refund.Approved": Refund.Approved,
    "domain.refund:Refund.Rejected": Refund.Rejected,
    "domain.refund:Refund.Issued": Refund.Issued,
    "domain.refund:Refund.Failed": Refund.Failed,
    "domain.refund:Refund.CommandRejected": Refund.CommandRejected,
    "domain.session:ChargingSession.Started": ChargingSession.Started,
    "domain.session:ChargingSession.Stopped": ChargingSession.Stopped,
    "domain.session:ChargingSession.Priced": ChargingSession.Priced,
    "domain.session:ChargingSession.CommandRejected": ChargingSession.CommandRejected,
    "domain.settlement:SessionSettlement.Opened": SessionSettlement.Opened,
    "domain.settlement:SessionSettlement.SessionPriced": SessionSettlement.SessionPriced,
    "domain.settlement:SessionSettlement.PaymentCaptured": SessionSettlement.PaymentCaptured,
    "domain.tariff:Tariff.Published": Tariff.Published,
    "domain.tariff:Tariff.Revised": Tariff.Revised,
    "domain.roaming_cdr:RoamingCdr.Received": RoamingCdr.Received,
    "domain.roaming_cdr:RoamingCdr.Priced": RoamingCdr.Priced,
    "domain.roaming_cdr:RoamingCdr.Reconciled": RoamingCdr.Reconciled,
    "domain.roaming_cdr:RoamingCdr.Rejected": RoamingCdr.Rejected,
    "domain.roaming_cdr:RoamingCdr.Reversed": RoamingCdr.Reversed,
    "domain.roaming_cdr:RoamingCdr.CreditApplied": RoamingCdr.CreditApplied,
    "domain.roaming_location:RoamingLocation.Recorded": RoamingLocation.Recorded,
    "domain.roaming_location:RoamingLocation.Updated": RoamingLocation.Updated,
    "domain.roaming_tariff:RoamingTariff.Recorded": RoamingTariff.Recorded,
    "domain.roaming_tariff:RoamingTariff.Updated": RoamingTariff.Updated,
}


def register_stored_topics() -> None:
    """Make every stored topic resolve to its class (idempotent)."""
    for topic, cls in STORED_TOPICS.items():
        register_topic(topic, cls)


register_stored_topics()
