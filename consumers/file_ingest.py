"""Ingest from a JSON Lines file (the embedded default, and offline re-ingest of exports).

A file has no consumer offsets: re-ingesting it is safe because every message carries its
event_id, so a second pass is all duplicates. Dead letters go to a JSON Lines file that
keeps the original bytes (base64) beside the reason and the line they came from.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path

from consumers.accounting import IngestCounters
from consumers.batch import BatchOutcome, Ledger, apply_batch
from consumers.dead_letter import DeadLetter
from consumers.publish import read_lines
from consumers.triage import SourceRecord


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
            "value_base64": base64.b64encode(letter.value).decode("ascii"),
        }
    )


def ingest_file(
    ledger: Ledger,
    path: Path,
    dead_letter_path: Path,
    batch_size: int = 500,
    on_batch: Callable[[BatchOutcome], None] = lambda outcome: None,
) -> IngestCounters:
    counters = IngestCounters()
    records = file_records(path)
    dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
    with dead_letter_path.open("a", encoding="utf-8") as dead_letters:
        while batch := list(islice(records, batch_size)):
            outcome = apply_batch(ledger, batch)
            for letter in outcome.dead_letters:
                dead_letters.write(dead_letter_line(letter) + "\n")
            dead_letters.flush()
            counters.add(outcome.counters)
            counters.check()
            on_batch(outcome)
    return counters
