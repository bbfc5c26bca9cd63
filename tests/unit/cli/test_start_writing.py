"""Ingest starts its ledger writer before it joins its group (cli/pipeline.py): a writer
that cannot start yet is waited for, one that was fenced is not."""

from __future__ import annotations

from typing import Any

import pytest

from cli import pipeline
from store.writer import WriterFenced, WriterUnavailable


class Starting:
    """A recorder whose writer's start raises the given errors, then starts."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.starts = 0

    def start_writing(self) -> None:
        self.starts += 1
        if self.errors:
            raise self.errors.pop(0)


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline.time, "sleep", lambda _: None)


def test_a_writer_process_that_died_while_starting_is_started_again() -> None:
    recorder = Starting(WriterUnavailable("ended (killed by SIGKILL) before it started"))
    pipeline._start_writing(recorder)  # type: ignore[arg-type]
    assert recorder.starts == 2


def test_a_fenced_writer_is_not_started_again() -> None:
    recorder: Any = Starting(WriterFenced("fenced"))
    with pytest.raises(WriterFenced):
        pipeline._start_writing(recorder)
    assert recorder.starts == 1


def test_it_gives_up_after_its_attempts() -> None:
    recorder: Any = Starting(*[WriterUnavailable("down")] * 3)
    with pytest.raises(WriterUnavailable):
        pipeline._start_writing(recorder, attempts=3)
    assert recorder.starts == 3
