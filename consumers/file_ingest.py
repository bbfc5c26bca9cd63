"""Ingest from a JSON Lines file (the embedded default, and offline re-ingest of exports).

A file has no consumer offsets: re-ingesting it is safe because every message carries its
event_id, so a second pass is all duplicates. Dead letters go to a JSON Lines file that
keeps the original bytes (base64) beside the reason and the line they came from.

On a sharded ledger each line goes to its shard's application by the publisher's routing
rule (consumers/routing.py: tariffs and OCPI reference data to every shard), as if it had
been published and consumed; each shard commits its part of a batch in its own writer's
transaction, and a pass cut short between two shards' commits is finished by running the
file again (each shard takes what it already has as duplicates).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from itertools import islice
from pathlib import Path

from consumers.batch import BatchOutcome, CommandHandler, apply_batch
from consumers.counters import IngestCounters
from consumers.dead_letter import DeadLetter
from consumers.producer import read_lines
from consumers.routing import SessionRouter
from consumers.sources import StopSignal
from consumers.triage import SourceRecord
from projections.gc_pacing import INGEST_YOUNG_THRESHOLD, fewer_collections

log = logging.getLogger(__name__)


def file_records(path: Path) -> Iterator[SourceRecord]:
    """One record per non-blank line; the offset is the 1-based line number."""
    for number, line in enumerate(read_lines(path), start=1):
        if line.strip():
            yield SourceRecord(topic=str(path), partition=0, offset=number, key=None, value=line)


def dead_letter_line(letter: DeadLetter) -> str:
    return json.dumps(
        {
            "field": letter.field,
            "reason": letter.reason,
            "source": letter.source_topic,
            "line": letter.source_offset,
            "failed_at": letter.failed_at.isoformat(),
            "value_sha256": hashlib.sha256(letter.value).hexdigest(),
            "value_base64": base64.b64encode(letter.value).decode("ascii"),
        }
    )


def _letter_key(source: str, line: int, value_sha256: str) -> tuple[str, int, str]:
    return source, line, value_sha256


def _already_dead_lettered(path: Path) -> set[tuple[str, int, str]]:
    """The (source, line, content) of every dead letter the file already holds."""
    if not path.exists():
        return set()
    keys = set()
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                entry = json.loads(line)
                value_sha256 = (
                    entry.get("value_sha256")
                    or hashlib.sha256(base64.b64decode(entry["value_base64"])).hexdigest()
                )
                keys.add(_letter_key(entry["source"], int(entry["line"]), value_sha256))
            except (ValueError, KeyError, TypeError, AttributeError):
                # A line torn by a crash mid-write: its letter is written again if needed.
                log.warning("%s line %d is not a dead letter (torn write?); skipped", path, number)
    return keys


def _end_torn_line(path: Path) -> None:
    """Ends a last line left without its newline, so the next letter starts a line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as file:
        file.seek(-1, 2)
        if file.read(1) != b"\n":
            file.write(b"\n")


class FileIngest:
    """Applies a JSON Lines file in batches; `counters` is the live account of the run."""

    def __init__(
        self, handler: CommandHandler, path: Path, dead_letter_path: Path, batch_size: int = 500
    ) -> None:
        self.handler = handler
        self.path = path
        self.dead_letter_path = dead_letter_path
        self.batch_size = batch_size
        self.counters = IngestCounters()
        self.handlers: Sequence[CommandHandler] = [handler]

    @classmethod
    def sharded(
        cls,
        handlers: Sequence[CommandHandler],
        path: Path,
        dead_letter_path: Path,
        batch_size: int = 500,
    ) -> FileIngest:
        """Ingest into a sharded ledger: ``handlers[p]`` is shard p's application."""
        ingest = cls(handlers[0], path, dead_letter_path, batch_size)
        ingest.handlers = list(handlers)
        return ingest

    def run(
        self,
        stop: StopSignal | None = None,
        until_idle: bool = True,
        on_batch: Callable[[BatchOutcome], None] = lambda outcome: None,
    ) -> IngestCounters:
        """Apply the file to its end (a file is always idle there), or until stopped."""
        records = file_records(self.path)
        shards = len(self.handlers)
        router = SessionRouter(shards) if shards > 1 else None
        self.dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
        # Re-ingesting a file is safe for the ledger (event_id); this keeps the dead-letter
        # file from growing a copy of the same bad lines on every pass too.
        _end_torn_line(self.dead_letter_path)
        written = _already_dead_lettered(self.dead_letter_path)
        # Fewer garbage collections, as in KafkaIngest.run.
        with (
            self.dead_letter_path.open("a", encoding="utf-8") as dead_letters,
            fewer_collections(INGEST_YOUNG_THRESHOLD),
        ):
            while not stop and (batch := list(islice(records, self.batch_size))):
                outcome = self._apply(batch, router)
                for letter in outcome.dead_letters:
                    key = _letter_key(
                        letter.source_topic,
                        letter.source_offset,
                        hashlib.sha256(letter.value).hexdigest(),
                    )
                    if key not in written:
                        dead_letters.write(dead_letter_line(letter) + "\n")
                        written.add(key)
                dead_letters.flush()
                self.counters.add(outcome.counters)
                self.counters.check()
                on_batch(outcome)
        return self.counters

    def _apply(self, batch: list[SourceRecord], router: SessionRouter | None) -> BatchOutcome:
        if router is None:
            return apply_batch(self.handler, batch)
        outcome = BatchOutcome()
        for shard, part in enumerate(routed(router, batch)):
            if part:
                done = apply_batch(self.handlers[shard], part, shards=router.shards)
                outcome.counters.add(done.counters)
                outcome.dead_letters.extend(done.dead_letters)
                outcome.results.extend(done.results)
        return outcome

    def close(self) -> None:
        """Nothing stays open between runs."""


def routed(router: SessionRouter, batch: Sequence[SourceRecord]) -> list[list[SourceRecord]]:
    """Each shard's records of a batch, in file order, keyed and placed as `evledger
    publish` would have; a record the rule cannot place goes to shard 0 without a key,
    where ingest dead-letters it with the contract's or the routing rule's reason."""
    parts: list[list[SourceRecord]] = [[] for _ in range(router.shards)]
    for record in batch:
        route = router.route(record.value)
        targets = range(router.shards) if route.everywhere else [route.partition or 0]
        for shard in targets:
            parts[shard].append(replace(record, key=route.key, partition=shard))
    return parts
