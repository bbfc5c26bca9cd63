"""A rebuild worker decodes only the events its group's read models take facts from
(replay/group_decoder.py): over real ledgers (the golden one, generated traffic with OCPI),
a group's rows are the same as with every event decoded (what each type's facts may hold:
tests/unit/projections/test_entities_of.py)."""

from __future__ import annotations

from typing import Any

import pytest

from domain.application import BillingApplication
from projections.analytics import Analytics
from projections.entities import Entity, LedgerEvent
from projections.facts import facts_of_batch
from projections.fold import fold
from projections.payment_history import PaymentHistory
from projections.refund_status import RefundStatusView
from projections.runner import LedgerSource
from replay.group_decoder import PLACEHOLDER, GroupDecoder
from tests.unit.projections.test_entities_of import decoded
from tests.unit.projections.test_event_decoder import traffic
from tests.unit.store.test_fast_json import golden

VIEWS = {*PaymentHistory.entities, *RefundStatusView.entities}


def _events(application: BillingApplication, stored: list[Any], decoder: Any) -> list[Any]:
    source = LedgerSource.of(application)
    source.decoder = decoder
    return decoded(source, stored)


@pytest.mark.parametrize("entities", [VIEWS, set(Analytics.entities)], ids=["views", "analytics"])
def test_a_group_gets_the_rows_it_gets_with_every_event_decoded(
    application: BillingApplication, entities: set[Entity]
) -> None:
    stored = [*golden(), *traffic(application)]
    every: list[LedgerEvent] = _events(application, stored, LedgerSource.of(application).decoder)
    ours: list[LedgerEvent] = _events(
        application, stored, GroupDecoder(application.mapper, entities)
    )
    assert [e.notification_id for e in ours] == [e.notification_id for e in every]
    left = [e for e in ours if e.event is PLACEHOLDER]
    assert left, "nothing was left undecoded"
    assert fold(facts_of_batch(ours), entities) == fold(facts_of_batch(every), entities)


def test_the_views_leave_processed_messages_and_analytics_decodes_them(
    application: BillingApplication,
) -> None:
    topic = "domain.idempotency:ProcessedMessage.Recorded"
    assert GroupDecoder(application.mapper, VIEWS).unread(topic)
    assert not GroupDecoder(application.mapper, Analytics.entities).unread(topic)
    # An unknown topic is decoded, and fails there as it always did.
    assert not GroupDecoder(application.mapper, VIEWS).unread("domain.nowhere:Gone")
