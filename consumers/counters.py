"""Ingest accounting: every consumed record is applied, a duplicate, or dead-lettered.

`rejected` counts applied records whose command the domain recorded as a business-rule
rejection; it is part of `applied`, not a fourth way out.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


class AccountingError(AssertionError):
    """The counters no longer add up: a record was lost or counted twice."""


@dataclass
class IngestCounters:
    consumed: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    dead_lettered: int = 0

    def check(self) -> None:
        accounted = self.applied + self.duplicates + self.dead_lettered
        if self.consumed != accounted:
            raise AccountingError(
                f"consumed {self.consumed} != applied {self.applied} + duplicates "
                f"{self.duplicates} + dead-lettered {self.dead_lettered}"
            )
        if self.rejected > self.applied:
            raise AccountingError(f"rejected {self.rejected} > applied {self.applied}")

    def add(self, other: IngestCounters) -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    def as_dict(self) -> dict[str, int]:
        return {item.name: getattr(self, item.name) for item in fields(self)}

    def summary(self) -> str:
        return ", ".join(
            f"{name.replace('_', '-')} {value}" for name, value in self.as_dict().items()
        )
