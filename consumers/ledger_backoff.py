"""When ingest waits for an unavailable ledger: which store errors pass, and how long to wait."""

from __future__ import annotations

from dataclasses import dataclass

from eventsourcing.persistence import IntegrityError, PersistenceError

from store.writer import WriterFenced


def retriable(error: PersistenceError) -> bool:
    """Whether waiting can cure it: a broker down, an election, a commit that timed out.

    Not a fenced writer (another ingest took over; this one must stop) and not a version
    conflict (the application resolves those itself before they get here).
    """
    return not isinstance(error, (WriterFenced, IntegrityError))


@dataclass
class LedgerBackoff:
    """Exponential, capped: quick after a leader election, gentle through a long outage."""

    first_s: float = 0.25
    max_s: float = 5.0
    failures: int = 0

    def next(self) -> float:
        self.failures += 1
        return float(min(self.max_s, self.first_s * 2 ** (self.failures - 1)))

    def reset(self) -> None:
        self.failures = 0
