"""A batch whose ledger commit failed unanswered but landed is read again and counted as
what it was the first time: applied, rejected, and duplicates (from upstream or within the
batch) alike (Guarantee 5; consumers/in_doubt.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from consumers.batch import apply_batch
from consumers.counters import IngestCounters
from consumers.in_doubt import InDoubt
from consumers.triage import SourceRecord
from demo.traffic import TrafficShape, generate
from domain.application import BillingApplication
from store.reader import LedgerReadError
from store.writer import WriterUnavailable


def record(offset: int, message: dict[str, Any], partition: int = 0) -> SourceRecord:
    return SourceRecord("ingest", partition, offset, None, json.dumps(message).encode())


def lands_then_times_out(application: BillingApplication, monkeypatch: pytest.MonkeyPatch) -> None:
    """The application's next save is recorded, then reported failed: a ledger commit that
    timed out but landed."""
    real = application._record

    def record_then_fail(processing_event: Any) -> Any:
        monkeypatch.setattr(application, "_record", real)
        real(processing_event)
        raise OperationalError("commit timed out (it landed)")

    monkeypatch.setattr(application, "_record", record_then_fail)


def unreadable(command: Any) -> None:
    raise LedgerReadError("cannot read the ledger (brokers down)")


def fails(
    application: BillingApplication,
    batch: list[SourceRecord],
    in_doubt: InDoubt,
    error: type[Exception] = OperationalError,
) -> None:
    """The batch's attempt fails with ``error``, which ingest reports to ``in_doubt``."""
    with pytest.raises(error) as failure:
        apply_batch(application, batch, in_doubt=in_doubt)
    in_doubt.failed(failure.value)


def fails_unsent(
    application: BillingApplication,
    batch: list[SourceRecord],
    in_doubt: InDoubt,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> None:
    """The batch's attempt fails with ``error`` as its save is made, nothing sent."""

    def raise_it(processing_event: Any) -> Any:
        raise error

    with monkeypatch.context() as down:
        down.setattr(application, "_record", raise_it)
        fails(application, batch, in_doubt, type(error))


def counts(counters: IngestCounters) -> tuple[int, int, int, int]:
    return counters.consumed, counters.applied, counters.rejected, counters.duplicates


def messages() -> list[dict[str, Any]]:
    return list(generate(5, TrafficShape(days=1, customers=2, stations=1)))


def the_batch(application: BillingApplication) -> list[SourceRecord]:
    """A batch of an upstream duplicate, an applied tariff and its second copy, and a
    rejected session (unknown tariff)."""
    tariffs = messages()[:2]
    assert all(m["type"] == "tariff.published" for m in tariffs)
    started = next(m for m in messages() if m["type"] == "session.started")
    unknown_tariff_session = started | {"event_id": "evt-unknown-tariff", "tariff_id": "T-NONE"}
    earlier = apply_batch(application, [record(0, tariffs[0])])
    assert counts(earlier.counters) == (1, 1, 0, 0)
    return [
        record(1, tariffs[0]),  # a duplicate from upstream: in the ledger before the batch
        record(2, tariffs[1]),
        record(3, tariffs[1]),  # a second copy within the batch
        record(4, unknown_tariff_session),
    ]


def test_a_landed_batch_read_again_counts_as_it_was_judged_the_first_time(
    application: BillingApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = the_batch(application)
    in_doubt = InDoubt()
    lands_then_times_out(application, monkeypatch)
    fails(application, batch, in_doubt)

    again = apply_batch(application, batch, in_doubt=in_doubt)
    assert again.dead_letters == []
    assert [result.outcome for result in again.results] == ["duplicate"] * 4
    assert counts(again.counters) == (4, 2, 1, 2)
    in_doubt.settled()

    # Settled: the same messages once more are upstream duplicates, all four.
    assert counts(apply_batch(application, batch, in_doubt=in_doubt).counters) == (4, 0, 0, 4)


def test_a_retry_that_fails_before_judging_keeps_the_first_attempt_s_judgement(
    application: BillingApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Brokers still down: the retry cannot read the ledger, so it judges and sends nothing;
    the retry after it still counts as the attempt whose commit landed judged."""
    batch = the_batch(application)
    in_doubt = InDoubt()
    lands_then_times_out(application, monkeypatch)
    fails(application, batch, in_doubt)
    with monkeypatch.context() as down:
        down.setattr(application, "_repeated", unreadable)
        fails(application, batch, in_doubt, LedgerReadError)

    assert counts(apply_batch(application, batch, in_doubt=in_doubt).counters) == (4, 2, 1, 2)


def test_a_redo_whose_save_fails_counts_what_it_saved_and_what_it_was_saving(
    application: BillingApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reused event id sends the batch one message at a time; the new tariff's own save
    lands but times out: read again, the upstream duplicate is still a duplicate, the
    tariff applied, the reused id a dead letter."""
    batch = the_batch(application)
    tariffs = messages()[:2]
    reused = tariffs[1] | {"event_id": tariffs[0]["event_id"]}  # other content
    batch = [batch[0], record(2, reused), record(3, tariffs[1])]
    in_doubt = InDoubt()
    lands_then_times_out(application, monkeypatch)
    fails(application, batch, in_doubt)

    again = apply_batch(application, batch, in_doubt=in_doubt)
    assert [letter.source_offset for letter in again.dead_letters] == [2]
    assert counts(again.counters) == (3, 1, 0, 1)


def test_a_redo_that_fails_forgets_the_judgement_of_the_batch_s_one_save(
    application: BillingApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one save met a concurrent writer (nothing committed), the redo could not read
    the ledger (nothing sent): the one save's judgement must not count a message found
    recorded later, which is then a duplicate."""
    tariff = messages()[0]
    batch = [record(0, tariff)]
    in_doubt = InDoubt()

    def conflict_then_down(processing_event: Any) -> Any:
        monkeypatch.setattr(application, "_repeated", unreadable)
        raise IntegrityError("a concurrent writer")

    monkeypatch.setattr(application, "_record", conflict_then_down)
    fails(application, batch, in_doubt, LedgerReadError)
    monkeypatch.undo()

    apply_batch(application, [record(5, tariff)])  # meanwhile, a copy applied
    assert counts(apply_batch(application, batch, in_doubt=in_doubt).counters) == (1, 0, 0, 1)


def test_a_copy_committed_from_another_partition_first_makes_the_in_doubt_one_a_duplicate(
    application: BillingApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Partition 1's commit failed and did not land; partition 0's copy of the message is
    applied and committed before partition 1 is read again: that one is a duplicate."""
    tariff = messages()[0]
    on_1, on_0 = [record(0, tariff, partition=1)], [record(0, tariff, partition=0)]
    in_doubt = InDoubt()
    lost = OperationalError("commit timed out (it did not land)")
    fails_unsent(application, on_1, in_doubt, monkeypatch, lost)

    assert counts(apply_batch(application, on_0, in_doubt=in_doubt).counters) == (1, 1, 0, 0)
    in_doubt.settled()
    assert counts(apply_batch(application, on_1, in_doubt=in_doubt).counters) == (1, 0, 0, 1)


def test_a_copy_counted_applied_through_its_held_judgement_makes_the_other_a_duplicate(
    application: BillingApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Partition 0's attempt judged the message new and failed; partition 1's copy landed
    unanswered. Read again, partition 0's copy counts as applied (its held judgement), so
    partition 1's is a duplicate: one message, recorded once, applied once."""
    tariff = messages()[0]
    on_0, on_1 = [record(0, tariff, partition=0)], [record(0, tariff, partition=1)]
    in_doubt = InDoubt()
    down = WriterUnavailable("writer of 'ledger' is not running")
    fails_unsent(application, on_0, in_doubt, monkeypatch, down)
    lands_then_times_out(application, monkeypatch)
    fails(application, on_1, in_doubt)

    total = (0, 0, 0, 0)
    for part in (on_0, on_1):
        counted = counts(apply_batch(application, part, in_doubt=in_doubt).counters)
        in_doubt.settled()
        total = tuple(a + b for a, b in zip(total, counted, strict=True))  # type: ignore[assignment]
    assert total == (2, 1, 0, 1)


def test_an_attempt_that_judged_its_batch_and_failed_may_have_landed_until_one_commits(
    application: BillingApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ingest settles such an attempt and asks its group's committed offset before the
    batch's dead letters are attached again (consumers/ingest.py); one that failed before
    judging sent nothing, and leaves the flag as the attempt before it left it."""
    batch = the_batch(application)
    in_doubt = InDoubt()
    with monkeypatch.context() as down:
        down.setattr(application, "_repeated", unreadable)
        fails(application, batch, in_doubt, LedgerReadError)
    assert not in_doubt.may_have_landed
    lands_then_times_out(application, monkeypatch)
    fails(application, batch, in_doubt)
    assert in_doubt.may_have_landed
    with monkeypatch.context() as down:
        down.setattr(application, "_repeated", unreadable)
        fails(application, batch, in_doubt, LedgerReadError)
    assert in_doubt.may_have_landed
    apply_batch(application, batch, in_doubt=in_doubt)
    in_doubt.settled()
    assert not in_doubt.may_have_landed
