"""A rebuild worker decodes only the events its group's read models take facts from
(replay/group_decoder.py): over real ledgers (the golden one, generated traffic with OCPI),
a group's rows are the same as with every event decoded (what each type's facts may hold:
tests/unit/projections/test_entities_of.py)."""

from __future__ import annotations

import zlib
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import Mapper
from eventsourcing.utils import resolve_topic

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

PROCESSED = "domain.idempotency:ProcessedMessage.Recorded"
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


def test_analytics_leaves_applied_messages_undecoded_and_decodes_the_rejected(
    application: BillingApplication,
) -> None:
    stored = [*golden(), *traffic(application)]
    ours = _events(application, stored, GroupDecoder(application.mapper, Analytics.entities))
    processed = [
        (record, ledger_event)
        for record, ledger_event in zip(stored, ours, strict=True)
        if record.topic == PROCESSED
    ]
    left = [record for record, e in processed if e.event is PLACEHOLDER]
    read = [e.event for _, e in processed if e.event is not PLACEHOLDER]
    assert left and read
    assert all(b'"applied"' in record.state or b'"duplicate"' in record.state for record in left)
    assert all(event.outcome == "rejected" for event in read)


def test_a_state_that_is_not_its_json_is_decoded_whatever_its_bytes(
    application: BillingApplication,
) -> None:
    """With a compressor (or a cipher) a state's bytes are not its JSON: no text test."""
    rejected = next(
        record
        for record in [*golden(), *traffic(application)]
        if record.topic == PROCESSED and b'"rejected"' in record.state
    )
    squeezed = zlib.compress(rejected.state)
    assert b'"rejected"' not in squeezed
    compressed = Mapper[UUID](transcoder=application.mapper.transcoder, compressor=zlib)  # type: ignore[arg-type]
    decoder = GroupDecoder(compressed, Analytics.entities)
    decoded = decoder.event(
        rejected.originator_id, rejected.originator_version, rejected.topic, squeezed
    )
    assert decoded is not PLACEHOLDER
    assert decoded.outcome == "rejected"


def test_a_type_stored_in_more_than_one_version_is_decoded_whatever_its_text(
    application: BillingApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upcast could make a fact of a state without the text (an older spelling)."""
    applied = next(
        record
        for record in [*golden(), *traffic(application)]
        if record.topic == PROCESSED and b'"applied"' in record.state
    )

    def event() -> Any:
        decoder = GroupDecoder(application.mapper, Analytics.entities)
        return decoder.event(
            applied.originator_id, applied.originator_version, applied.topic, applied.state
        )

    assert event() is PLACEHOLDER
    recorded = resolve_topic(PROCESSED)
    # An upcaster alone (the library's name for one), then with the class version it serves.
    monkeypatch.setattr(recorded, "upcast_v1_v2", staticmethod(lambda state: None), raising=False)
    assert event().outcome == "applied"
    monkeypatch.setattr(recorded, "class_version", 2, raising=False)
    assert event().outcome == "applied"
