"""Which projection failures are a database outage (retry) and which are an event the read
model cannot hold (stop that read model at it), and the record of such a stop."""

from __future__ import annotations

from dataclasses import dataclass

from projections.databases.errors import DatabaseBusy, DatabaseUnavailable
from projections.entities import LedgerEvent


def is_transient(error: BaseException) -> bool:
    """True for errors of reaching or locking a database, which a retry can cure; anything
    else (a value out of range, a NUL in text, a bug) fails the same way every time."""
    return isinstance(error, DatabaseUnavailable | DatabaseBusy | ConnectionError | TimeoutError)


@dataclass(frozen=True)
class ProjectionStopped:
    """A read model stopped at a ledger event it cannot write; it holds everything before."""

    projection: str
    position: int
    event_type: str
    error: str

    @classmethod
    def at(cls, projection: str, event: LedgerEvent, error: BaseException) -> ProjectionStopped:
        kind = type(event.event)
        return cls(projection, event.notification_id, kind.__qualname__, repr(error))

    def describe(self) -> str:
        return (
            f"projection {self.projection!r} stopped at ledger event {self.position} "
            f"({self.event_type}): {self.error}; it holds events up to {self.position - 1}. "
            "The other projections and ingest go on; fix the cause, then restart it "
            "(or `evledger replay rebuild`)."
        )
