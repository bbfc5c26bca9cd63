"""Stored events stay readable: every event class is pinned in the stored-topic table (so a
rename keeps old topics resolving), and ChargingSession.Priced's version 2 (it gained
``rounding``) reads version 1 events with the default through its upcaster."""

from __future__ import annotations

import inspect
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic, register_topic, resolve_topic

import domain
from domain.application import BillingApplication
from domain.event_topics import STORED_TOPICS
from domain.session import ChargingSession
from domain.tariff import TariffTerms
from tests.golden.golden import EXPORT_DIR

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _event_classes() -> set[type]:
    import importlib
    import pkgutil

    found: set[type] = set()
    for module_info in pkgutil.iter_modules(domain.__path__):
        module = importlib.import_module(f"domain.{module_info.name}")
        for aggregate in vars(module).values():
            if not (
                inspect.isclass(aggregate)
                and issubclass(aggregate, Aggregate)
                and aggregate.__module__ == module.__name__
            ):
                continue
            found.add(aggregate)
            for name, member in vars(aggregate).items():
                # Event and Created are the library's bases, never triggered themselves.
                if (
                    inspect.isclass(member)
                    and issubclass(member, CanMutateAggregate)
                    and name not in ("Event", "Created")
                ):
                    found.add(member)
    return found


def test_every_aggregate_and_event_class_is_pinned_to_its_stored_topic() -> None:
    unlisted = sorted(
        get_topic(cls) for cls in _event_classes() if cls not in STORED_TOPICS.values()
    )
    assert not unlisted, (
        f"add these to domain/event_topics.py STORED_TOPICS (a renamed class keeps its old "
        f"topic there too): {unlisted}"
    )
    for topic, cls in STORED_TOPICS.items():
        assert resolve_topic(topic) is cls


def test_a_renamed_event_class_reads_events_stored_under_its_old_topic() -> None:
    # What a rename does: the class moves, its old topic is registered to the new class.
    old_topic = "domain.charging:Session.Stopped"
    register_topic(old_topic, ChargingSession.Stopped)
    application = BillingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    try:
        stored = application.mapper.to_stored_event(_stopped_session().collect_events()[1])
        renamed = StoredEvent(
            stored.originator_id, stored.originator_version, old_topic, stored.state
        )
        event = application.mapper.to_domain_event(renamed)
    finally:
        application.close()
    assert type(event) is ChargingSession.Stopped
    assert event.meter_stop_wh == 13_000


def _stopped_session() -> ChargingSession:
    session = ChargingSession.start(
        session_id="S-UP",
        station_id="ST",
        connector_id="1",
        customer_id="C",
        tariff_id="T1",
        tariff_version=1,
        tariff_terms=TariffTerms(
            currency="EUR", price_per_kwh=Decimal("0.39"), vat_rate=Decimal("0.19")
        ),
        meter_start_wh=1000,
        started_at=T0,
    )
    session.stop(meter_stop_wh=13_000, stopped_at=T0 + timedelta(minutes=50))
    return session


def test_a_new_price_is_stored_as_version_2_with_its_rounding() -> None:
    application = BillingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    try:
        priced = _stopped_session().collect_events()[2]
        stored = application.mapper.to_stored_event(priced)
        state = json.loads(stored.state)
        assert state["class_version"] == 2
        assert state["rounding"] == "half-up"
        assert application.mapper.to_domain_event(stored).rounding == "half-up"
    finally:
        application.close()


def test_a_version_1_price_from_the_golden_ledger_reads_with_the_default_rounding() -> None:
    rows = [json.loads(line) for line in (EXPORT_DIR / "ledger.jsonl").read_text().splitlines()]
    row = next(r for r in rows if r["topic"] == "domain.session:ChargingSession.Priced")
    # Written before version 2: no class_version and no rounding in the stored state.
    assert "class_version" not in row["state_json"] and "rounding" not in row["state_json"]
    application = BillingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    try:
        from uuid import UUID

        event = application.mapper.to_domain_event(
            StoredEvent(
                UUID(row["originator_id"]),
                row["originator_version"],
                row["topic"],
                row["state_json"].encode(),
            )
        )
    finally:
        application.close()
    assert isinstance(event, ChargingSession.Priced)
    assert event.rounding == "half-up"
    assert event.total_minor == json.loads(row["state_json"])["total_minor"]
