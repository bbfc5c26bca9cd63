"""Fold a batch's facts into one row per key, so each key is written once per batch."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from projections.entities import Entity, Fact

Rows = dict[tuple[Any, ...], dict[str, Any]]


def fold(facts: Iterable[Fact], entities: Iterable[Entity]) -> dict[Entity, Rows]:
    """Rows by entity and key; a later fact's values win, but a None never clears a value
    (the same rule the upserts apply against the stored row)."""
    wanted = set(entities)
    folded: dict[Entity, Rows] = {entity: {} for entity in wanted}
    for fact in facts:
        if fact.entity not in wanted:
            continue
        rows = folded[fact.entity]
        row = rows.get(fact.key)
        if row is None:
            # Most keys have one fact in a batch (every posting and line item): copied whole.
            rows[fact.key] = dict(fact.values)
            continue
        for column, value in fact.values.items():
            if value is not None or column not in row:
                row[column] = value
    return folded
