"""A projector batch's facts are computed once, whatever the number of read models, and
each read model still gets exactly the facts of the events it lacks."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import projections.batch_facts
from domain.application import BillingApplication
from projections.analytics import Analytics
from projections.batch_facts import BatchFacts
from projections.databases.duckdb import DuckDatabase
from projections.databases.sqlite import SqliteDatabase
from projections.entities import Entity, Fact
from projections.facts import LedgerEvent, facts_of, facts_of_batch
from projections.fold import fold
from projections.payment_history import PaymentHistory
from projections.refund_status import RefundStatusView
from projections.runner import LedgerSource, Projector
from tests.unit.projections.scenario import build_ledger


@pytest.fixture
def events() -> list[LedgerEvent]:
    application = BillingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    build_ledger(application)
    return LedgerSource.of(application).read_after(0, 1000)


def test_three_read_models_compute_each_events_facts_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    application = BillingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    build_ledger(application)
    calls: list[int] = []

    def counted(ledger_event: LedgerEvent) -> object:
        calls.append(ledger_event.notification_id)
        return facts_of(ledger_event)

    monkeypatch.setattr(projections.batch_facts, "facts_of", counted)
    views, duck = SqliteDatabase(tmp_path / "views.sqlite3"), DuckDatabase(tmp_path / "a.duckdb")
    models = [PaymentHistory(views), RefundStatusView(views), Analytics(duck)]
    projector = Projector(LedgerSource.of(application), models, batch_size=7)
    projector.create()
    projector.run_until_idle()
    head = application.recorder.max_notification_id()
    assert sorted(calls) == list(range(1, (head or 0) + 1))  # once per event, not per model
    assert {model.position() for model in models} == {head}
    views.close()
    duck.close()


def test_a_tail_of_the_batch_gets_the_facts_of_that_tail(events: list[LedgerEvent]) -> None:
    shared = BatchFacts(events[:20])
    assert shared.of(events[:20]) == facts_of_batch(events[:20])
    assert shared.of(events[12:20]) == facts_of_batch(events[12:20])
    assert shared.of([]) == []
    assert shared.computed == 1


def test_events_outside_the_batch_are_refused(events: list[LedgerEvent]) -> None:
    shared = BatchFacts(events[5:10])
    with pytest.raises(ValueError, match="not a run of this batch"):
        shared.of(events[8:12])
    with pytest.raises(ValueError, match="not a run of this batch"):
        shared.of(events[:3])


def test_read_models_at_one_position_share_the_runs_folded_rows(
    events: list[LedgerEvent],
) -> None:
    shared = BatchFacts(events)
    run = shared.of(events)
    assert shared.of(events) is run  # a second read model at the same position
    history = run.fold(PaymentHistory.entities)
    everything = run.fold(Analytics.entities)
    for entity, rows in everything.items():
        assert rows == fold(facts_of_batch(events), [entity])[entity]
    for entity, rows in history.items():
        assert everything.get(entity, rows) is rows  # folded once, not again per model
    assert shared.of(events[3:]) is not run
    assert shared.of(events[3:]).fold(Analytics.entities) == fold(
        facts_of_batch(events[3:]), Analytics.entities
    )


def _copying_fold(facts: list[Fact], entities: list[Entity]) -> dict[Entity, Any]:
    """The definition of a fold: every row a copy, later values win, None never clears."""
    folded: dict[Entity, Any] = {entity: {} for entity in entities}
    for fact in facts:
        if fact.entity in folded:
            row = folded[fact.entity].setdefault(fact.key, {})
            for column, value in fact.values.items():
                if value is not None or column not in row:
                    row[column] = value
    return folded


def test_folding_a_batch_gives_the_copied_rows_and_leaves_its_facts_as_they_were(
    events: list[LedgerEvent],
) -> None:
    facts = facts_of_batch(events)
    before = copy.deepcopy(facts)
    entities = list(Entity)
    folded = fold(facts, entities)
    assert folded == _copying_fold(before, entities)
    assert facts == before
    # Not vacuous: keys with one fact and keys with several are in the batch.
    keys = Counter((fact.entity, fact.key) for fact in facts)
    assert 1 in keys.values() and max(keys.values()) > 1


def test_read_models_writing_a_batch_leave_its_facts_as_they_were(
    events: list[LedgerEvent], tmp_path: Path
) -> None:
    """A row folded from one fact is that fact's own values: a write that changed a row in
    place would change the facts that later runs of the batch fold again."""
    shared = BatchFacts(events)
    run = shared.of(events)
    before = copy.deepcopy(list(run))
    views, duck = SqliteDatabase(tmp_path / "views.sqlite3"), DuckDatabase(tmp_path / "a.duckdb")
    try:
        for model in (PaymentHistory(views), RefundStatusView(views), Analytics(duck)):
            model.create()
            model.apply(events, run)
    finally:
        views.close()
        duck.close()
    assert list(run) == before
    assert list(shared.of(events)) == before
