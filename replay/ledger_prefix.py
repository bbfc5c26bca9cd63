"""The ledger up to a stop (a position, or the events recorded by a time), and the
catch-up loop that projects read models to that stop (on every shard of a sharded ledger)
with progress reports."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.idempotency import ProcessedMessage
from projections.batch_size import DEFAULT_BATCH_SIZE
from projections.entities import LedgerEvent
from projections.gc_pacing import fewer_collections
from projections.read_model import ReadModel
from projections.runner import LedgerSource, Projector, RetryPolicy
from projections.sharded import ShardedProjector
from replay.group_decoder import GroupDecoder

REBUILD_BATCH_SIZE = DEFAULT_BATCH_SIZE

# Called with (position reached, position aimed at) after each batch.
ProgressHook = Callable[[int, int], None]


@dataclass(frozen=True)
class LedgerStop:
    """Where a ledger prefix ends: after notification ``until_id``, and/or before the first
    event recorded after ``recorded_until`` (the ledger's own timestamp of the event).

    With ``whole_commands`` the prefix ends instead at the last command that ends at or
    before that point (Guarantee 3: a command's events are seen together or not at all), as
    a point in time must; without, exactly there, as aligning with a live model needs.
    """

    until_id: int | None = None
    recorded_until: datetime | None = None
    whole_commands: bool = False


def ends_a_command(ledger_event: LedgerEvent) -> bool:
    """Whether the event is the last of a command's: every command's events are saved
    with, and end with, the record that its upstream message was processed."""
    return isinstance(ledger_event.event, ProcessedMessage.Recorded)


def _through_last_command(events: list[LedgerEvent]) -> list[LedgerEvent]:
    """``events`` up to and including the last one that ends a command."""
    for index in range(len(events) - 1, -1, -1):
        if ends_a_command(events[index]):
            return events[: index + 1]
    return []


class PrefixSource(LedgerSource):
    """A ledger source that ends at a stop, as if the ledger held nothing after it.

    A stop by time or at whole commands reads the events themselves, so ``inner`` must
    decode every event: over a group's decoder (replay/group_decoder.py), whose undecoded
    events hold no timestamp and end no command, it is refused (an id stop reads only
    positions and is taken)."""

    def __init__(self, inner: LedgerSource, stop: LedgerStop) -> None:
        if isinstance(inner.decoder, GroupDecoder) and (
            stop.whole_commands or stop.recorded_until is not None
        ):
            raise ValueError(
                "a ledger prefix by time or at whole commands needs every event decoded; "
                "this source decodes only its group's"
            )
        super().__init__(inner.recorder, inner.mapper)
        self.inner = inner
        self.stop = stop
        # The last notification of the prefix: known up front for an exact id stop, and
        # once reached for a time stop or a stop trimmed back to a command's end.
        self.end: int | None = None if stop.whole_commands else stop.until_id

    def read_after(self, position: int, limit: int) -> list[LedgerEvent]:
        if self.end is not None:
            limit = min(limit, self.end - position)
            return self.inner.read_after(position, limit) if limit > 0 else []
        if self.stop.until_id is not None:
            # One event past the stop, if there is one, shows where the prefix ends.
            limit = min(limit, self.stop.until_id + 1 - position)
            if limit <= 0:
                self.end = position
                return []
        while True:
            events = self.inner.read_after(position, limit)
            past = self._first_past_the_stop(events)
            if past is not None:
                kept = events[:past]
                if self.stop.whole_commands:
                    kept = _through_last_command(kept)
                self.end = kept[-1].notification_id if kept else position
                return kept
            if not self.stop.whole_commands:
                return events
            whole = _through_last_command(events)
            if whole or len(events) < limit:
                # What follows the last whole command is read again with the next batch;
                # a ledger never ends inside a command, so nothing is lost at its head.
                return whole
            limit *= 2  # one command's events outnumber the batch: read further

    def _first_past_the_stop(self, events: list[LedgerEvent]) -> int | None:
        """The index of the first event after the stop (None: all are at or before it)."""
        until_id, recorded_until = self.stop.until_id, self.stop.recorded_until
        for index, ledger_event in enumerate(events):
            if until_id is not None and ledger_event.notification_id > until_id:
                return index
            # The prefix stops at the first later event, so it stays contiguous even if
            # a later-stamped event was stored before an earlier-stamped one.
            if recorded_until is not None and ledger_event.event.timestamp > recorded_until:
                return index
        return None

    def last_position(self) -> int:
        head = self.inner.last_position()
        if self.end is not None:
            return min(head, self.end)
        if self.stop.until_id is not None:
            return min(head, self.stop.until_id)
        return head


def project_to(
    source: LedgerSource,
    models: Sequence[ReadModel],
    until: int | None = None,
    *,
    batch_size: int = REBUILD_BATCH_SIZE,
    progress: ProgressHook | None = None,
) -> int:
    """Apply the ledger to ``models`` up to ``until`` (default: the source's end as of
    now); the lowest position the models reached."""
    return project_shards(
        [source],
        models,
        None if until is None else [until],
        batch_size=batch_size,
        progress=progress,
    )


def project_shards(
    sources: Sequence[LedgerSource],
    models: Sequence[ReadModel],
    until: Sequence[int] | None = None,
    *,
    batch_size: int = REBUILD_BATCH_SIZE,
    progress: ProgressHook | None = None,
) -> int:
    """Apply every shard's ledger (``sources``, shard 0 first) to ``models`` (shard 0's
    instances; shard p's follow ``model.for_shard(p)``), shard p up to ``until[p]``
    (default: its end as of now), one batch per shard in turn; the lowest number of events
    the models reached over all shards (for one shard, its position)."""
    if not models:
        return 0
    stops: Sequence[int | None] = [None] * len(sources) if until is None else until
    bounded = [
        source if stop is None else PrefixSource(source, LedgerStop(until_id=stop))
        for source, stop in zip(sources, stops, strict=True)
    ]
    retry = RetryPolicy(attempts=4, first_delay_s=0.2)
    projectors = [
        Projector(
            source,
            [model.for_shard(shard) for model in models] if shard else list(models),
            batch_size=batch_size,
            retry=retry,
        )
        for shard, source in enumerate(bounded)
    ]
    runner = (
        projectors[0]
        if len(projectors) == 1
        else ShardedProjector(bounded[0], list(models), shards=projectors)
    )
    runner.create()
    with fewer_collections():
        targets = [source.last_position() for source in bounded]
        reached = min(runner.positions().values())
        if progress is not None:
            progress(reached, sum(targets))
        while reached < sum(targets) and runner.step():
            reached = min(runner.positions().values())
            for shard, source in enumerate(bounded):
                if isinstance(source, PrefixSource) and source.end is not None:
                    targets[shard] = min(targets[shard], source.end)
            if progress is not None:
                progress(reached, max(sum(targets), reached))
        return min(runner.positions().values())
