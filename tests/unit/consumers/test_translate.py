"""to_command reads the message model's fields directly: it must build the command that
building it from every field the model yields (its declared ones, then its unknown ones,
as before) builds, and refuse what that refuses."""

from __future__ import annotations

import json
from datetime import time
from typing import Any

import pytest

from consumers import contract
from consumers.contract import parse_message
from consumers.translate import energy_windows, to_command
from demo.traffic import TrafficShape, generate
from domain import commands
from domain.vocabulary import MessageType


def by_iterating_the_model(message: contract.UpstreamMessage) -> commands.Command:
    """The command as built before: from every field the model yields (BaseModel.__iter__)."""
    command_class = commands.COMMAND_TYPES[MessageType(message.type)]
    fields: dict[str, Any] = {
        name: value
        for name, value in message
        if name in command_class.__dataclass_fields__ and value is not None
    }
    if isinstance(message, contract.TariffPublished):
        fields["energy_windows"] = energy_windows(message)
    return command_class(**fields)


def same(raw: bytes) -> commands.Command:
    message = parse_message(raw)
    command = to_command(message)
    reference = by_iterating_the_model(message)
    # repr tells Decimal("1.0") from Decimal("1.00") and an int from a bool.
    assert repr(command) == repr(reference)
    assert list(vars(command).items()) == list(vars(reference).items())
    return command


def test_every_generated_message_builds_the_same_command() -> None:
    shape = TrafficShape(days=2, customers=40, stations=3, service_refund_rate=0.3)
    kinds = {type(same(json.dumps(m).encode())) for m in generate(7, shape)}
    assert len(kinds) >= 8, kinds


BASE = {"event_id": "e1", "occurred_at": "2026-03-01T10:00:00Z"}


def test_windows_none_values_and_unknown_fields_build_the_same_command() -> None:
    tariff = {
        **BASE,
        "type": "tariff.published",
        "tariff_id": "T1",
        "currency": "EUR",
        "price_per_kwh": "0.30",
        "vat_rate": "0.21",
        "price_per_minute": None,
        "timezone": "Europe/Amsterdam",
        "energy_windows": [
            {"name": "peak", "starts_at": "17:00", "ends_at": "21:00", "price_per_kwh": "0.45"}
        ],
        "tariff_note": "an unknown field",
    }
    command = same(json.dumps(tariff).encode())
    assert isinstance(command, commands.PublishTariff)
    assert command.energy_windows[0].starts_at == time(17)
    stop = {**BASE, "type": "session.stopped", "session_id": "S1", "meter_stop_wh": 5}
    same(json.dumps({**stop, "stop_reason": None, "extra": {"nested": [1]}}).encode())


def test_an_unknown_field_named_like_a_command_field_is_refused_as_before() -> None:
    capture = {**BASE, "type": "payment.captured", "payment_id": "P1", "amount_minor": 1}
    message = parse_message(json.dumps({**capture, "MESSAGE_TYPE": "x"}).encode())
    with pytest.raises(TypeError) as before:
        by_iterating_the_model(message)
    with pytest.raises(TypeError) as now:
        to_command(message)
    assert str(now.value) == str(before.value)
