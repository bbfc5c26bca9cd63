"""Turns a validated upstream message into the domain command it asks for."""

from __future__ import annotations

from datetime import time
from typing import Any

from consumers import contract
from domain import commands
from domain.tariff import EnergyWindow
from domain.vocabulary import MessageType


def to_command(message: contract.UpstreamMessage) -> commands.Command:
    """The domain command for a message; its own checks may still raise a ValueError."""
    command_class = commands.COMMAND_TYPES[MessageType(message.type)]
    fields: dict[str, Any] = {
        name: value
        for name, value in message
        if name in command_class.__dataclass_fields__ and value is not None
    }
    if isinstance(message, contract.TariffPublished):
        fields["energy_windows"] = tuple(
            EnergyWindow(
                name=window.name,
                starts_at=time.fromisoformat(window.starts_at),
                ends_at=time.fromisoformat(window.ends_at),
                price_per_kwh=window.price_per_kwh,
            )
            for window in message.energy_windows
        )
    return command_class(**fields)
