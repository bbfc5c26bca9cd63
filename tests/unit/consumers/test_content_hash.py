"""A command's content hash is the SHA-256 of json's canonical spelling of its content,
whichever encoder writes it (domain/commands.py `_canonical_json`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields, replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from consumers.contract import parse_message
from consumers.translate import to_command
from demo.traffic import TrafficShape, generate
from domain.commands import AuthorisePayment, Command, PublishTariff, _canonical
from domain.tariff import EnergyWindow

WHEN = datetime(2026, 3, 1, tzinfo=UTC)


def json_hash(command: Command) -> str:
    """The definition: json.dumps of the canonical content, sorted and compact."""
    content = {f.name: _canonical(getattr(command, f.name)) for f in fields(command)}
    content["type"] = command.MESSAGE_TYPE
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
