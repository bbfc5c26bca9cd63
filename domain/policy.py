"""The automatic refund approval policy: which refund requests need no person to decide."""

from __future__ import annotations

from dataclasses import dataclass

from domain.payment import Payment
from domain.session import ChargingSession


@dataclass(frozen=True)
class RefundPolicy:
    """Which refund requests are approved automatically (each rule can be switched off).

    - failed session: reason ``failed_session`` and the session delivered 0 Wh;
    - proven overcharge: reason ``overcharge``, the payment's reconciliation found an
      overcharge, and the amount is within what is left of it.
    """

    auto_approve_failed_sessions: bool = True
    auto_approve_proven_overcharge: bool = True


def automatic_approval(
    policy: RefundPolicy,
    *,
    reason: str,
    amount_minor: int,
    payment: Payment,
    session: ChargingSession | None,
) -> str | None:
    """Why this refund is approved automatically, or None when a person must decide."""
    if (
        policy.auto_approve_failed_sessions
        and reason == "failed_session"
        and session is not None
        and session.priced is not None
        and session.priced.energy_wh == 0
    ):
        return f"session {session.session_id} delivered 0 Wh"
    if (
        policy.auto_approve_proven_overcharge
        and reason == "overcharge"
        and 0 < amount_minor <= payment.overcharge_refundable_minor()
    ):
        return (
            f"payment {payment.payment_id} captured {payment.overcharge_minor} more than "
            "the session's priced total"
        )
    return None
