"""Where ingest reads upstream messages from, as one port: the Kafka ingest topic or a JSON
Lines file. Both apply batches through consumers.batch and keep the same counters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from consumers.batch import BatchOutcome
from consumers.counters import IngestCounters


class StopSignal(Protocol):
    """Truthy once the command was asked to stop (SIGTERM, SIGINT)."""

    def __bool__(self) -> bool: ...

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, waking at once when stopped; True if stopped."""


class IngestSource(Protocol):
    """A source of upstream records that applies them to the ledger batch by batch."""

    counters: IngestCounters

    def run(
        self,
        stop: StopSignal,
        until_idle: bool = False,
        on_batch: Callable[[BatchOutcome], None] = lambda outcome: None,
    ) -> IngestCounters:
        """Apply batches until stopped or (until_idle, or a file's end) nothing is left."""

    def close(self) -> None: ...
