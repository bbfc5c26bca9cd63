"""On one shard of a sharded ledger, a rejection for something the shard does not hold says
why it may be there (the routing rule); other rejections, and an unsharded ledger's, do not."""

from __future__ import annotations

from domain.application import BillingApplication
from domain.results import Outcome
from tests.unit.domain.test_application import Upstream

NOTE = "(on ledger shard 1 of 2: route by session)"
POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


def test_unknown_references_carry_the_routing_note() -> None:
    up = Upstream()
    sharded = BillingApplication(env=POPO, unknown_note=NOTE)
    plain = BillingApplication(env=POPO)
    for command in (up.capture(100, payment_id="P-elsewhere"), up.stop("S-elsewhere")):
        noted = sharded.handle(command)
        assert noted.outcome is Outcome.REJECTED
        assert noted.rejection_reason is not None
        assert noted.rejection_reason.startswith("unknown ")
        assert noted.rejection_reason.endswith(NOTE)
        bare = plain.handle(command)
        assert bare.rejection_reason is not None and NOTE not in bare.rejection_reason
    # A rejection about something the shard does hold is not a routing matter.
    sharded.handle(up.tariff())
    sharded.handle(up.start())
    again = sharded.handle(up.start())
    assert again.rejection_reason is not None and NOTE not in again.rejection_reason
