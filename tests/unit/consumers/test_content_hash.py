"""A command's content hash is the SHA-256 of json's canonical spelling of its content,
whichever encoder writes it (domain/commands.py `_canonical_json`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.contract import parse_message
from consumers.translate import to_command
from demo.traffic import TrafficShape, generate
from domain.commands import AuthorisePayment, Command, PublishTariff, _canonical
from domain.tariff import EnergyWindow

WHEN = datetime(2026, 3, 1, tzinfo=UTC)


def json_hash(command: Command) -> str:
    """The definition: json.dumps of the canonical content, sorted and compact, times as
    their UTC instant's isoformat()."""
    content = {f.name: _spelled(getattr(command, f.name)) for f in fields(command)}
    content["type"] = command.MESSAGE_TYPE
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _spelled(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return _canonical(value)


@settings(max_examples=300)
@given(
    at=st.datetimes(
        # A day from the calendar's ends, where every instant has a UTC date.
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=5, minutes=45)), timezone(timedelta(seconds=-30))]
        ),
    )
)
def test_any_time_hashes_as_its_utc_isoformat(at: datetime) -> None:
    command = replace(payment("t"), occurred_at=at)
    assert command.content_sha256() == json_hash(command)


def test_every_command_of_generated_traffic_hashes_as_json_spells_it() -> None:
    messages = generate(seed=5, shape=TrafficShape(stations=3, customers=40, days=2))
    commands = [to_command(parse_message(json.dumps(m).encode())) for m in messages]
    assert len({type(command) for command in commands}) >= 8
    for command in commands:
        assert command.content_sha256() == json_hash(command)


def payment(text: str) -> AuthorisePayment:
    return AuthorisePayment(
        event_id="e1",
        occurred_at=WHEN,
        payment_id=f"P-{text}",
        session_id="S",
        amount_minor=10**17,
        currency="EUR",
        method="card",
    )


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        'quote " backslash \\ slash /',
        "".join(chr(code) for code in range(1, 32)),
        "del \x7f",
        "é ü ß",
        "€ 中 \u2028 \ufeff",
        "emoji \U0001f600",
        "lone surrogate \ud800",
    ],
)
def test_any_text_hashes_as_json_spells_it(text: str) -> None:
    command = payment(text)
    assert command.content_sha256() == json_hash(command)


def test_integers_beyond_64_bits_hash_as_json_spells_them() -> None:
    # Past orjson's range: json writes them.
    command = replace(payment("big"), amount_minor=2**70)
    assert command.content_sha256() == json_hash(command)


def test_tariff_windows_and_decimals_hash_as_json_spells_them() -> None:
    window = EnergyWindow(
        name="nuit é",
        starts_at=datetime(2026, 1, 1, 22, 0).time(),
        ends_at=datetime(2026, 1, 1, 6, 0).time(),
        price_per_kwh=Decimal("0.2500"),
    )
    tariff = PublishTariff(
        event_id="t1",
        occurred_at=WHEN,
        tariff_id="T",
        currency="EUR",
        price_per_kwh=Decimal("0.30"),
        vat_rate=Decimal("0.2"),
        timezone="Europe/Paris",
        energy_windows=(window,),
    )
    assert tariff.content_sha256() == json_hash(tariff)
