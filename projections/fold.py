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
    # The keys whose row is a copy of its own: most keys have one fact in a batch (every
    # posting and line item), whose values are the row as they are, copied only when a
    # second fact of the key is folded in (a fact's values are never changed).
    copied: set[tuple[Entity, tuple[Any, ...]]] = set()
    for fact in facts:
        if fact.entity not in wanted:
            continue
        rows = folded[fact.entity]
        key = fact.key
        row = rows.get(key)
        if row is None:
            rows[key] = fact.values  # type: ignore[assignment]  # read only until copied
            continue
        if (fact.entity, key) not in copied:
            row = rows[key] = dict(row)
            copied.add((fact.entity, key))
        for column, value in fact.values.items():
            if value is not None or column not in row:
                row[column] = value
    return folded


class FoldedOnce(list[Fact]):
    """A run of facts whose rows are folded once per entity and shared by every read model
    that applies the run (the projector's: they fold the same batch), instead of each model
    walking all the facts again and copying their values into rows of its own. The read
    models only read the rows they are given."""

    def __init__(self, facts: Iterable[Fact]) -> None:
        super().__init__(facts)
        self._rows: dict[Entity, Rows] = {}

    def fold(self, entities: Iterable[Entity]) -> dict[Entity, Rows]:
        wanted = list(entities)
        missing = [entity for entity in wanted if entity not in self._rows]
        if missing:
            self._rows.update(fold(self, missing))
        return {entity: self._rows[entity] for entity in wanted}
