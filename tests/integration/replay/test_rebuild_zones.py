"""A rebuild of payment_history compares its checksum (every column, the stored summary
texts among them) with the live table's: texts the same in every session zone (times in
UTC) let a rebuild whose sessions are in another zone than the projector's swap."""

from __future__ import annotations

import dataclasses

import pytest
from psycopg.conninfo import make_conninfo

from bootstrap import bootstrap
from bootstrap.settings import Settings
from domain.application import BillingApplication
from replay.rebuild import rebuild
from tests.integration.replay.conftest import project_all, traffic_commands, write

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
VIEWS = ["payment_history"]


def _in_zone(settings: Settings, pg_dsn: str, schema: str, zone: str) -> Settings:
    dsn = make_conninfo(pg_dsn, options=f"-c search_path={schema} -c TimeZone={zone}")
    return dataclasses.replace(settings, pg_dsn=dsn)


def test_a_rebuild_in_another_session_zone_swaps(
    kafka_settings: Settings, writer: BillingApplication, pg_dsn: str, live_schema: str
) -> None:
    write(writer, traffic_commands())
    project_all(_in_zone(kafka_settings, pg_dsn, live_schema, "Europe/Berlin"), VIEWS)
    report = rebuild(bootstrap(_in_zone(kafka_settings, pg_dsn, live_schema, "UTC")), VIEWS)
    unlike = [
        f"{each.table}: live={each.live} rebuilt={each.rebuilt}"
        for outcome in report.outcomes
        for each in outcome.comparisons
        if each.live is None or not each.live.matches(each.rebuilt)
    ]
    assert report.all_swapped, unlike
