"""The vocabulary of the projection core: the kinds of row, a fact about one row, and an
event with its ledger position.

Apart from projections/facts.py (which imports the domain's event classes), so that a
query, which needs only the read models' shapes, starts without the domain.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, NamedTuple


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


class Fact(NamedTuple):
    """Column values one event establishes for the row ``key`` of ``entity``. A named tuple:
    a batch makes tens of thousands, and a frozen dataclass took four times as long to
    make (its ``__init__`` sets each field through ``object.__setattr__``)."""

    entity: Entity
    key: tuple[Any, ...]
    values: Mapping[str, Any]


# Ledger positions of a sharded ledger in one column: shard p's event n is at
# p * SHARD_POSITION_STRIDE + n, so shard 0 (an unsharded ledger) keeps its notification ids.
SHARD_POSITION_STRIDE = 10**12


class LedgerEvent(NamedTuple):
    """A domain event and its position in the ledger (its notification id, on its shard);
    a named tuple, as ``Fact`` is (one per event read)."""

    notification_id: int
    event: Any
    shard: int = 0

    @property
    def ledger_position(self) -> int:
        """The event's position, unique across the shards of a sharded ledger."""
        return self.shard * SHARD_POSITION_STRIDE + self.notification_id
