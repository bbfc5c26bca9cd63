"""ocpi.* messages at ingest: a bad object of each kind is a dead letter with field and
reason; a valid one becomes a domain command carrying the object's JSON text unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from consumers.ocpi_contract import decode, encode
from consumers.ocpi_import import ImportReport, wrap
from consumers.triage import SourceRecord, triage
from domain.ocpi_commands import RecordCdr, RecordOcpiLocation, RecordOcpiTariff

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ocpi"


def load(name: str) -> Any:
    return decode((FIXTURES / name).read_text())


def record(value: bytes, offset: int = 1) -> SourceRecord:
    return SourceRecord(topic="ingest", partition=0, offset=offset, key=None, value=value)


def message(kind: str, obj: Any, **extra: Any) -> bytes:
    document = {
        "type": f"ocpi.{kind}",
        "event_id": f"e-{kind}",
        "occurred_at": "2024-06-03T09:05:00Z",
        kind: obj,
        **extra,
    }
    return encode(document).encode()


def dead_letter_of(value: bytes) -> tuple[str, str]:
    sorted_out = triage([record(value)])
    assert sorted_out.commands == []
    (letter,) = sorted_out.dead_letters
    assert letter.value == value  # the original bytes, unchanged
    return letter.field, letter.reason


@pytest.mark.parametrize(
    ("kind", "fixture", "change", "field", "reason"),
    [
        (
            "tariff",
            "tariff_flat_and_energy.json",
            lambda t: t["elements"][0]["price_components"][0].update(type="KWH"),
            "tariff.elements.0.price_components.0.type",
            "'ENERGY', 'FLAT', 'PARKING_TIME' or 'TIME'",
        ),
        (
            "location",
            "location_utrecht.json",
            lambda loc: loc.update(time_zone="Amsterdam"),
            "location.time_zone",
            "unknown IANA time zone",
        ),
        (
            "cdr",
            "cdr_20_45_kwh.json",
            lambda c: c["total_cost"].update(excl_vat="5.63"),
            "cdr.total_cost.excl_vat",
            "must be a JSON number",
        ),
        (
            "cdr",
            "cdr_20_45_kwh.json",
            lambda c: c.pop("cdr_token"),
            "cdr.cdr_token",
            "Field required",
        ),
    ],
)
def test_a_bad_object_of_each_kind_is_dead_lettered_with_field_and_reason(
    *, kind: str, fixture: str, change: Any, field: str, reason: str
) -> None:
    obj = load(fixture)
    change(obj)
    found_field, found_reason = dead_letter_of(message(kind, obj, time_zone="Europe/Amsterdam"))
    assert found_field == field
    assert reason in found_reason


def test_a_cdr_without_a_time_zone_is_left_to_the_ledgers_location() -> None:
    sorted_out = triage([record(message("cdr", load("cdr_20_45_kwh.json")))])
    ((_, command),) = sorted_out.commands
    assert isinstance(command, RecordCdr) and command.time_zone is None


def test_an_unknown_ocpi_type_is_named() -> None:
    value = b'{"type": "ocpi.session", "event_id": "e", "occurred_at": "2024-06-03T09:05:00Z"}'
    field, reason = dead_letter_of(value)
    assert field == "type"
    assert reason.startswith("unknown OCPI message type 'ocpi.session'; known: ocpi.cdr")


def test_a_valid_object_of_each_kind_becomes_its_command() -> None:
    cdr = load("cdr_20_45_kwh.json")
    sorted_out = triage(
        [
            record(message("cdr", cdr, time_zone="Europe/Amsterdam")),
            record(message("tariff", load("tariff_flat_and_energy.json"))),
            record(message("location", load("location_utrecht.json"))),
        ]
    )
    assert sorted_out.dead_letters == []
    commands = [command for _, command in sorted_out.commands]
    assert [type(c) for c in commands] == [RecordCdr, RecordOcpiTariff, RecordOcpiLocation]
    assert isinstance(commands[0], RecordCdr)
    assert decode(commands[0].document) == cdr  # the object, every number as it was sent
    assert commands[0].time_zone == "Europe/Amsterdam"
    assert isinstance(commands[2], RecordOcpiLocation)
    assert commands[2].time_zone == "Europe/Amsterdam" and commands[2].location_id == "LOC-1"


def test_on_shards_a_cdr_is_checked_by_its_key_and_reference_data_goes_anywhere() -> None:
    from dataclasses import replace

    from consumers.routing import ROUTING_RULE, shard_of

    cdr = load("cdr_20_45_kwh.json")
    key = f"ocpi-cdr:{cdr['country_code']}:{cdr['party_id']}:{cdr['id']}".encode()
    home = shard_of(key, 3)
    on = record(message("cdr", cdr, time_zone="Europe/Amsterdam"))
    elsewhere = (home + 1) % 3
    sorted_out = triage(
        [
            replace(on, key=key, partition=home),
            replace(on, key=key, partition=elsewhere),
            replace(on, key=cdr["id"].encode(), partition=home),
            replace(record(message("tariff", load("tariff_flat_and_energy.json"))), partition=2),
            replace(record(message("location", load("location_utrecht.json"))), partition=1),
        ],
        shards=3,
    )
    assert [type(c) for _, c in sorted_out.commands] == [
        RecordCdr,
        RecordOcpiTariff,
        RecordOcpiLocation,
    ]
    assert [letter.source_partition for letter in sorted_out.dead_letters] == [elsewhere, home]
    for letter in sorted_out.dead_letters:
        assert letter.reason.startswith("misrouted") and ROUTING_RULE in letter.reason
    assert sorted_out.dead_letters[1].field == "cdr.id"


def test_other_messages_still_become_commands() -> None:
    started = {
        "type": "session.started",
        "event_id": "e1",
        "occurred_at": "2024-06-03T09:05:00Z",
        "session_id": "s1",
        "station_id": "ocpi.station",  # the marker text inside a value changes nothing
        "connector_id": "1",
        "customer_id": "c1",
        "tariff_id": "t1",
        "meter_start_wh": 0,
    }
    sorted_out = triage([record(json.dumps(started).encode())])
    assert len(sorted_out.commands) == 1 and sorted_out.dead_letters == []


def test_import_wraps_objects_unchanged_with_the_locations_zone() -> None:
    cdr, location = load("cdr_20_45_kwh.json"), load("location_utrecht.json")
    report = ImportReport()
    lines = wrap([cdr, location], None, report)
    wrapped = [decode(line) for line in lines]
    # Locations first: the CDR after them finds its zone in the ledger too.
    assert [m["type"] for m in wrapped] == ["ocpi.location", "ocpi.cdr"]
    assert wrapped[1]["cdr"] == cdr  # Decimal for Decimal: every number as it was sent
    assert '"excl_vat":5.63' in lines[1]
    assert wrapped[1]["time_zone"] == "Europe/Amsterdam"
    assert wrapped[1]["event_id"] == "ocpi.cdr:NL:EVL:CDR-2045:2024-06-03T09:05:00Z"
    assert report.counts == {"cdr": 1, "location": 1} and report.cdrs_without_zone == []
    alone = ImportReport()
    (line,) = wrap([cdr], None, alone)
    assert "time_zone" not in decode(line) and alone.cdrs_without_zone == ["CDR-2045"]
