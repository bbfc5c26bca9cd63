"""The vocabulary of the projection core: the kinds of row, a fact about one row, and an
event with its ledger position.

Apart from projections/facts.py (which imports the domain's event classes), so that a
query, which needs only the read models' shapes, starts without the domain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Entity(StrEnum):
    """The kinds of row the core knows; each read model keeps the ones it needs."""

    SESSION = "session"
    PAYMENT = "payment"
    REFUND = "refund"
    LINE_ITEM = "line_item"
    POSTING = "posting"
    REJECTION = "rejection"
    REJECTED_MESSAGE = "rejected_message"
    TARIFF_VERSION = "tariff_version"
    ROAMING_CDR = "roaming_cdr"


@dataclass(frozen=True)
class Fact:
    """Column values one event establishes for the row ``key`` of ``entity``."""

    entity: Entity
    key: tuple[Any, ...]
    values: Mapping[str, Any]


@dataclass(frozen=True)
class LedgerEvent:
    """A domain event and its position in the ledger (its notification id)."""

    notification_id: int
    event: Any
