"""A point in time inside a command is taken back to the end of the command before it:
a snapshot never shows half a command (Guarantee 3), and says where it was cut."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bootstrap import bootstrap
from bootstrap.read_models import READ_MODEL_NAMES
from bootstrap.settings import Settings
from domain.application import BillingApplication
from domain.session import ChargingSession
from projections.read_model import ReadModel
from projections.runner import LedgerSource
from replay.ledger_prefix import ends_a_command, project_to
from replay.point_in_time import PointInTime, build_snapshot
from tests.unit.projections.scenario import commands


def _contents(models: Sequence[ReadModel]) -> dict[str, Any]:
    try:
        return {model.name: (model.position(), model.snapshot()) for model in models}
    finally:
        for model in models:
            model.db.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings.embedded_in(tmp_path / "data")
    app = BillingApplication(env=bootstrap(settings).ledger.environment())
    for command in commands():
        app.handle(command)  # one save per command
    app.close()
    return settings


def test_a_point_inside_a_command_gives_the_ledger_to_the_previous_command(
    settings: Settings, tmp_path: Path
) -> None:
    app = BillingApplication(env=bootstrap(settings).ledger.environment())
    source = LedgerSource.of(app)
    ledger = source.read_after(0, 10_000)
    # A session's stop: Stopped, then Priced and the settlement, then the message record.
    stopped = next(e for e in ledger if isinstance(e.event, ChargingSession.Stopped))
    after = ledger[stopped.notification_id]
    assert not ends_a_command(stopped) and not ends_a_command(after)
    previous_end = max(
        e.notification_id
        for e in ledger
        if ends_a_command(e) and e.notification_id < stopped.notification_id
    )
    expected_settings = Settings.embedded_in(tmp_path / "expected")
    expected_models = bootstrap(expected_settings).read_models()
    project_to(source, expected_models, previous_end)
    expected = _contents(expected_models)
    app.close()

    points = {
        "offset": PointInTime(until_offset=stopped.notification_id),
        "time": PointInTime(as_of=stopped.event.timestamp),
        "next_time": PointInTime(as_of=after.event.timestamp),
    }
    for label, point in points.items():
        report = build_snapshot(bootstrap(settings), READ_MODEL_NAMES, point, label)
        assert (report.position, report.offset) == (previous_end, previous_end), label
        pointed = Settings.embedded_in(settings.data_dir / "snapshots" / label)
        assert _contents(bootstrap(pointed).read_models()) == expected, label


def test_a_point_at_a_command_end_keeps_that_command(settings: Settings) -> None:
    app = BillingApplication(env=bootstrap(settings).ledger.environment())
    ledger = LedgerSource.of(app).read_after(0, 10_000)
    app.close()
    ends = [e.notification_id for e in ledger if ends_a_command(e)]
    assert ends[-1] == ledger[-1].notification_id
    report = build_snapshot(
        bootstrap(settings), ["refund_status"], PointInTime(until_offset=ends[3]), "at_end"
    )
    assert report.position == ends[3]
    report = build_snapshot(
        bootstrap(settings), ["refund_status"], PointInTime(until_offset=0), "none"
    )
    assert (report.position, report.offset, report.last_recorded_at) == (0, None, None)
