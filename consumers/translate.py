"""Turns a validated upstream message into the domain command it asks for."""

from __future__ import annotations

from datetime import time
from typing import Any

from consumers import contract
from domain import commands
from domain.tariff import EnergyWindow
from domain.vocabulary import MessageType

# Each message model's command class and the names that class declares (MESSAGE_TYPE too,
# as the dataclass lists it: an unknown field of that name reaches the command, which
# refuses it).
_PLANS: dict[type[Any], tuple[type[commands.Command], frozenset[str]]] = {}


def to_command(message: contract.UpstreamMessage) -> commands.Command:
    """The domain command for a message; its own checks may still raise a ValueError."""
    plan = _PLANS.get(type(message))
    if plan is None:
        command_type = commands.COMMAND_TYPES[MessageType(message.type)]
        plan = _PLANS[type(message)] = (command_type, frozenset(command_type.__dataclass_fields__))
    command_class, names = plan
    # The model's declared fields, then its unknown ones, as iterating the model yields
    # them (BaseModel.__iter__, a generator, cost more than building the command).
    fields: dict[str, Any] = {
        name: value for name, value in vars(message).items() if name in names and value is not None
    }
    extra = message.__pydantic_extra__
    if extra:
        fields.update(
            (name, value) for name, value in extra.items() if name in names and value is not None
        )
    if type(message) is contract.TariffPublished:  # not isinstance: an ABC check in pydantic
        fields["energy_windows"] = energy_windows(message)
    return command_class(**fields)


def energy_windows(message: contract.TariffPublished) -> tuple[EnergyWindow, ...]:
    """A tariff message's time-of-day windows as the domain's."""
    return tuple(
        EnergyWindow(
            name=window.name,
            starts_at=time.fromisoformat(window.starts_at),
            ends_at=time.fromisoformat(window.ends_at),
            price_per_kwh=window.price_per_kwh,
        )
        for window in message.energy_windows
    )
