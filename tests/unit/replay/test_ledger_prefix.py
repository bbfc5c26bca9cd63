"""A ledger prefix ends at a notification id, or before the first event recorded after a
time; projecting it gives the read models of that prefix."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain.application import BillingApplication
from projections.analytics import Analytics
from projections.databases.duckdb import DuckDatabase
from projections.payment_history import PaymentHistory
from projections.runner import LedgerSource
from replay.group_decoder import GroupDecoder
from replay.ledger_prefix import LedgerStop, PrefixSource, ends_a_command, project_to
from tests.unit.projections.scenario import commands


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[BillingApplication]:
    app = BillingApplication(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "l")}
    )
    yield app
    app.close()


def test_prefix_by_id_and_by_recording_time(ledger: BillingApplication) -> None:
    scenario = commands()
    ledger.handle_batch(scenario[:8])
    middle = ledger.recorder.max_notification_id() or 0
    time.sleep(0.01)
    moment = datetime.now(UTC)
    time.sleep(0.01)
    ledger.handle_batch(scenario[8:])
    head = ledger.recorder.max_notification_id() or 0
    source = LedgerSource.of(ledger)

    by_id = PrefixSource(source, LedgerStop(until_id=middle))
    assert by_id.last_position() == middle
    assert [e.notification_id for e in by_id.read_after(middle - 2, 100)] == [middle - 1, middle]
    assert by_id.read_after(middle, 100) == []

    by_time = PrefixSource(source, LedgerStop(recorded_until=moment))
    assert by_time.last_position() == head  # not known before it is reached
    events = by_time.read_after(0, 1000)
    assert [e.notification_id for e in events] == list(range(1, middle + 1))
    assert by_time.last_position() == middle
    assert by_time.read_after(middle, 100) == []


def test_project_to_reports_progress_and_stops(ledger: BillingApplication, tmp_path: Path) -> None:
    ledger.handle_batch(commands())
    head = ledger.recorder.max_notification_id() or 0
    seen: list[tuple[int, int]] = []
    model = Analytics(DuckDatabase(tmp_path / "a.duckdb"))
    reached = project_to(
        LedgerSource.of(ledger),
        [model],
        head - 3,
        batch_size=4,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert reached == model.position() == head - 3
    assert seen[0] == (0, head - 3) and seen[-1] == (head - 3, head - 3)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    model.db.close()


def test_whole_commands_reads_past_a_small_batch_and_holds_back_a_partial_one(
    ledger: BillingApplication,
) -> None:
    ledger.handle_batch(commands())
    source = LedgerSource.of(ledger)
    every = source.read_after(0, 10_000)
    ends = [e.notification_id for e in every if ends_a_command(e)]
    stop = LedgerStop(recorded_until=datetime.now(UTC), whole_commands=True)

    # A batch of one event is widened to the first whole command.
    prefix = PrefixSource(source, stop)
    assert [e.notification_id for e in prefix.read_after(0, 1)] == list(range(1, ends[0] + 1))
    # A batch that ends inside a command stops at the command before it.
    inside = ends[2] + 1
    assert ends[3] > inside
    assert prefix.read_after(ends[0], inside - ends[0])[-1].notification_id == ends[2]
    assert prefix.end is None  # the stop is not reached yet
    # Reading on, batch by batch, gives the whole ledger.
    position, seen = 0, []
    while batch := prefix.read_after(position, 3):
        seen.extend(e.notification_id for e in batch)
        position = batch[-1].notification_id
    assert seen == [e.notification_id for e in every]


def test_a_group_decoded_source_is_refused_where_the_events_are_read(
    ledger: BillingApplication,
) -> None:
    """A rebuild worker's source decodes only its group's events (replay/group_decoder.py):
    the views' leave every ProcessedMessage undecoded, so no command would seem to end."""
    ledger.handle_batch(commands())
    head = ledger.recorder.max_notification_id() or 0
    source = LedgerSource.of(ledger)
    source.decoder = GroupDecoder(ledger.mapper, [*PaymentHistory.entities])
    for stop in [
        LedgerStop(until_id=head, whole_commands=True),
        LedgerStop(recorded_until=datetime.now(UTC)),
    ]:
        with pytest.raises(ValueError, match="needs every event decoded"):
            PrefixSource(source, stop)
    # A stop by id reads only positions: taken, and it gives every event up to it.
    by_id = PrefixSource(source, LedgerStop(until_id=head - 1))
    assert [e.notification_id for e in by_id.read_after(0, 10_000)] == list(range(1, head))
    # With every event decoded, the same whole-command stop gives the whole ledger.
    whole = PrefixSource(LedgerSource.of(ledger), LedgerStop(until_id=head, whole_commands=True))
    assert len(whole.read_after(0, 10_000)) == head
