"""The projector: reads the ledger in batches and applies each batch to every read model,
one database transaction per batch and read model, retrying with backoff on errors. A
batch's facts are computed once and shared by the read models.

The ledger is read through the library's ``ApplicationRecorder.select_notifications`` and
the application's mapper, so the same projector runs on the SQLite store (embedded) and
the Kafka store (production). Notification ids are contiguous from 1 on every store we
use; a gap means events were lost or hidden, so the projector stops loudly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import ApplicationRecorder, Mapper, Notification

from projections.batch_facts import BatchFacts
from projections.batch_size import DEFAULT_BATCH_SIZE
from projections.entities import LedgerEvent
from projections.event_decoder import EventDecoder
from projections.faults import ProjectionStopped, is_transient
from projections.read_model import ReadModel
from projections.tracking import ProjectionPositionConflict

log = logging.getLogger("evledger.projector")


class LedgerGapError(RuntimeError):
    """The ledger skipped a notification id: applying past it would lose events."""


class ProjectionStalled(RuntimeError):
    """A batch kept failing after every retry; the read model is unchanged by it."""


class LedgerSource:
    """The ledger as contiguous, decoded events after a position."""

    def __init__(self, recorder: ApplicationRecorder, mapper: Mapper[Any], shard: int = 0) -> None:
        self.recorder = recorder
        self.mapper = mapper
        # The ledger shard this reads (its events' positions say so: facts.LedgerEvent).
        self.shard = shard
        self.decoder = EventDecoder(mapper)

    @classmethod
    def of(cls, application: Application[Any], shard: int = 0) -> LedgerSource:
        return cls(application.recorder, application.mapper, shard)

    def read_after(self, position: int, limit: int) -> list[LedgerEvent]:
        notifications = self.recorder.select_notifications(
            start=position, limit=limit, inclusive_of_start=False
        )
        return self.events_of(position, notifications)

    def events_of(self, position: int, notifications: Sequence[Notification]) -> list[LedgerEvent]:
        """The notifications read after ``position`` as events, checked contiguous."""
        return self.events_from(
            position,
            (
                (n.id, n.originator_id, n.originator_version, n.topic, n.state)
                for n in notifications
            ),
        )

    def events_from(
        self, position: int, records: Iterable[tuple[int, UUID | str, int, str, bytes]]
    ) -> list[LedgerEvent]:
        """Records read after ``position`` (notification id, originator id, version, topic,
        state) as events, checked contiguous."""
        events = []
        expected = position + 1
        decode = self.decoder.event
        shard = self.shard
        for notification_id, originator_id, version, topic, state in records:
            if notification_id != expected:
                raise LedgerGapError(
                    f"ledger notification {expected} is missing (next is {notification_id}): "
                    "ids must be contiguous; stopping rather than skipping events"
                )
            event = decode(originator_id, version, topic, state)
            events.append(LedgerEvent(notification_id, event, shard))
            expected += 1
        return events

    def last_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    def reading_from(self, position: int, limit: int) -> None:
        """Told that batches of ``limit`` will be read one after another from ``position``
        on (a projector's steps); nothing here, a source that reads ahead starts with the
        first batch instead of the second."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff; ``attempts`` None retries for ever (a long-running projector)."""

    attempts: int | None = 6
    first_delay_s: float = 0.2
    max_delay_s: float = 10.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay_s, self.first_delay_s * 2 ** (attempt - 1)))


@dataclass
class ProjectionProgress:
    """What one run did for one read model."""

    name: str
    position: int = 0
    events: int = 0
    batches: int = 0
    retries: int = 0


@dataclass
class Projector:
    """Brings read models up to the ledger's end, batch by batch."""

    source: LedgerSource
    read_models: Sequence[ReadModel]
    batch_size: int = DEFAULT_BATCH_SIZE
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    progress: dict[str, ProjectionProgress] = field(default_factory=dict)
    # Read models stopped at an event they cannot write; the others go on without them.
    stopped: dict[str, ProjectionStopped] = field(default_factory=dict)
    _positions: dict[str, int] = field(default_factory=dict)
    _told_source: bool = False

    def __post_init__(self) -> None:
        for model in self.read_models:
            self.progress[model.name] = ProjectionProgress(model.name)

    def create(self) -> None:
        """Create every read model's tables and tracking row (idempotent)."""
        for model in self.read_models:
            self._with_retries(model.name, "create tables", model.create)

    def positions(self) -> dict[str, int]:
        for model in self.read_models:
            if model.name not in self._positions:
                self._positions[model.name] = self._with_retries(
                    model.name, "read position", model.position
                )
        return dict(self._positions)

    def known_positions(self) -> dict[str, int]:
        """The positions as of the last step, without asking the read models' databases (so
        another thread may ask: /readyz)."""
        return dict(self._positions)

    def step(self) -> int:
        """Read one batch after the lowest position and apply it; the events read."""
        positions = self.positions()
        active = self._active()
        if not active:
            return 0
        low = min(positions[model.name] for model in active)
        if not self._told_source:
            self.source.reading_from(low, self.batch_size)
            self._told_source = True
        batch = self._with_retries("ledger", f"read after {low}", self._read, low)
        facts = BatchFacts(batch)
        for model in active:
            part = [e for e in batch if e.notification_id > positions[model.name]]
            self._apply(model, part, facts)
        for model in active:
            model.after_batch(caught_up=len(batch) < self.batch_size)
        return len(batch)

    def run_until_idle(self) -> dict[str, ProjectionProgress]:
        """Apply batches until every read model has the whole ledger as of now."""
        while self.step():
            pass
        for name, position in self.positions().items():
            self.progress[name].position = position
        return self.progress

    def run(self, stop: threading.Event, poll_interval_s: float = 0.5) -> None:
        """Project until ``stop`` is set; sleeps between polls when idle."""
        while not stop.is_set():
            if not self.step():
                stop.wait(poll_interval_s)

    def _active(self) -> list[ReadModel]:
        return [model for model in self.read_models if model.name not in self.stopped]

    def _read(self, position: int) -> list[LedgerEvent]:
        return self.source.read_after(position, self.batch_size)

    def _apply(self, model: ReadModel, part: Sequence[LedgerEvent], facts: BatchFacts) -> None:
        if not part:
            return
        progress = self.progress[model.name]
        attempt = 0
        while True:
            position = self._positions[model.name]
            remaining = [e for e in part if e.notification_id > position]
            if not remaining or remaining[0].notification_id != position + 1:
                # Done (perhaps by a commit whose acknowledgement was lost), or another
                # projector moved the position: the next step reads from where it is now.
                return
            try:
                model.apply(remaining, facts.of(remaining))
            except (LedgerGapError, KeyboardInterrupt):
                raise
            except ProjectionPositionConflict as conflict:
                log.warning("%s: %s; re-reading its position", model.name, conflict)
            except Exception as error:
                if not is_transient(error):
                    self._isolate(model, remaining, error, facts)
                    return
                attempt += 1
                first, last = remaining[0].notification_id, remaining[-1].notification_id
                if self.retry.attempts is not None and attempt >= self.retry.attempts:
                    raise ProjectionStalled(
                        f"projection {model.name!r} failed {attempt} times on ledger events "
                        f"{first}..{last}: {error!r}; it stays at {position}"
                    ) from error
                delay = self.retry.delay(attempt)
                log.warning(
                    "%s: applying events %d..%d failed (%r); retry %d in %.1fs",
                    model.name,
                    first,
                    last,
                    error,
                    attempt,
                    delay,
                )
                progress.retries += 1
                self.sleep(delay)
            else:
                self._positions[model.name] = remaining[-1].notification_id
                progress.events += len(remaining)
                progress.batches += 1
                return
            # Whether the failed transaction committed is known only to the database.
            self._positions.pop(model.name, None)
            self._positions[model.name] = self._with_retries(
                model.name, "read position", model.position
            )

    def _isolate(
        self,
        model: ReadModel,
        events: Sequence[LedgerEvent],
        error: Exception,
        facts: BatchFacts,
    ) -> None:
        """After an error a retry cannot cure: search the events by halves, each half in one
        transaction (a half that fails is searched in turn), so that those before the bad one
        are kept, and stop this read model at the bad one. An event per transaction would
        cost a 10,000-event batch as many transactions, stalling the process's read models;
        halves cost at most two per halving."""
        self._positions[model.name] = self._with_retries(
            model.name, "read position", model.position
        )
        if len(events) == 1:
            if self._positions[model.name] < events[0].notification_id:
                stop = ProjectionStopped.at(model.name, events[0], error)
                self.stopped[model.name] = stop
                log.error("%s", stop.describe())
            return
        middle = len(events) // 2
        for half in (events[:middle], events[middle:]):
            if model.name in self.stopped:
                return
            self._apply(model, half, facts)

    def _with_retries(self, name: str, what: str, action: Callable[..., Any], *args: Any) -> Any:
        attempt = 0
        while True:
            try:
                return action(*args)
            except LedgerGapError:
                raise
            except Exception as error:
                attempt += 1
                if self.retry.attempts is not None and attempt >= self.retry.attempts:
                    raise ProjectionStalled(
                        f"{name}: {what} failed {attempt} times: {error!r}"
                    ) from error
                delay = self.retry.delay(attempt)
                log.warning(
                    "%s: %s failed (%r); retry %d in %.1fs", name, what, error, attempt, delay
                )
                self.sleep(delay)
