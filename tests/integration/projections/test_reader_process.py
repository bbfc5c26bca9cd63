"""Reading a Kafka ledger ahead in a process of its own (bootstrap/reader_process.py): the
same events as the thread gives, the child's errors raised in the projector, and no child
left behind by close() or by a parent that was killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bootstrap import bootstrap
from bootstrap.reader_process import LedgerReaderGone, ProcessReadAhead
from demo.traffic import TrafficShape, generate
from projections.entities import LedgerEvent
from projections.prefetch import PrefetchingSource
from projections.runner import LedgerSource
from tests.integration.projections.test_sharded_projection import settings_for, write_routed
from tests.processes import gone

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

__all__ = ["settings_for"]  # the fixture, used here

BATCH = 50


def read_all(source: LedgerSource) -> list[LedgerEvent]:
    events: list[LedgerEvent] = []
    while batch := source.read_after(events[-1].notification_id if events else 0, BATCH):
        events += batch
    return events


def comparable(events: list[LedgerEvent]) -> list[tuple[object, ...]]:
    return [
        (e.notification_id, e.shard, type(e.event).__name__, e.event.originator_id, e.event)
        for e in events
    ]


def process_of(source: LedgerSource) -> ProcessReadAhead | None:
    """The reader process of a source the root built: there is one on 2 cores or more."""
    assert isinstance(source, PrefetchingSource)
    reader = source.read_ahead
    assert isinstance(reader, ProcessReadAhead) == (len(os.sched_getaffinity(0)) > 1)
    return reader if isinstance(reader, ProcessReadAhead) else None


def test_the_process_reads_exactly_what_the_thread_reads(settings_for: object) -> None:
    settings = settings_for(3)  # type: ignore[operator]
    sizes = write_routed(settings, generate(seed=7, shape=TrafficShape(stations=4, customers=40)))
    assert min(sizes) > 3 * BATCH, sizes  # several batches, so several read ahead
    root = bootstrap(settings)
    for shard, size in enumerate(sizes):
        with root.ledger_source(shard) as source:
            process_of(source)
            assert isinstance(source, PrefetchingSource)
            inner = LedgerSource(source.recorder, source.mapper, shard)
            environment = root.ledger.shard(shard).environment()
            reader = ProcessReadAhead(inner, environment, uuid_ids=True)
            by_process_source = PrefetchingSource(inner, read_ahead=reader)
            try:
                by_process = read_all(by_process_source)
            finally:
                by_process_source.close()
            assert reader.process.exitcode is not None
            by_thread = read_all(PrefetchingSource(inner))
        assert len(by_process) == size
        assert [e.notification_id for e in by_process] == list(range(1, size + 1))
        assert comparable(by_process) == comparable(by_thread)


def test_a_rebuild_worker_s_root_reads_ahead_in_a_thread(settings_for: object) -> None:
    """A rebuild's worker processes take a core each: no reader process more for them."""
    root = bootstrap(settings_for(1))  # type: ignore[operator]
    with root.for_another_process().ledger_source() as source:
        assert isinstance(source, PrefetchingSource)
        assert not isinstance(source.read_ahead, ProcessReadAhead)


def test_an_error_in_the_child_is_raised_by_the_read_that_asks_for_its_batch(
    settings_for: object,
) -> None:
    settings = settings_for(1)  # type: ignore[operator]
    write_routed(settings, generate(seed=3, shape=TrafficShape(stations=3, customers=20)))
    root = bootstrap(settings)
    with root.ledger_source() as source:
        # The child reads from a broker that refuses it (nothing listens on port 1).
        inner = LedgerSource(source.recorder, source.mapper)
        refused = ProcessReadAhead(
            inner,
            {
                **root.ledger.environment(),
                "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
                "KAFKA_TIMEOUT": "2",
            },
            uuid_ids=True,
        )
        broken = PrefetchingSource(inner, read_ahead=refused)
        try:
            first = broken.read_after(0, 10)
            second = broken.read_after(first[-1].notification_id, 10)  # read directly
            assert [e.notification_id for e in second] == list(range(11, 21))
            with pytest.raises(Exception) as raised:
                broken.read_after(second[-1].notification_id, 10)  # the child's batch
            # The child's own error (the broker refused it), not the child's death.
            assert not isinstance(raised.value, LedgerReaderGone)
            assert "ledger reader process" in " ".join(getattr(raised.value, "__notes__", []))
            # The next position is read directly again, as after any failed read ahead.
            assert broken.read_after(second[-1].notification_id, 10)
        finally:
            broken.close()
        assert refused.process.exitcode is not None


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_parent_leaves_no_reader_process(
    settings_for: object, tmp_path: Path, how: signal.Signals
) -> None:
    settings = settings_for(1)  # type: ignore[operator]
    write_routed(settings, generate(seed=3, shape=TrafficShape(stations=3, customers=20)))
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from bootstrap import bootstrap\n"
        "from bootstrap.settings import Settings\n"
        f"settings = Settings(kafka_bootstrap={settings.kafka_bootstrap!r}, "
        f"topic_prefix={settings.topic_prefix!r}, data_dir=__import__('pathlib').Path("
        f"{str(settings.data_dir)!r}))\n"
        # Spawn imports the main module again in the child: only a guarded one can spawn.
        "if __name__ == '__main__':\n"
        "    with bootstrap(settings).ledger_source() as source:\n"
        "        first = source.read_after(0, 5)\n"
        "        source.read_after(first[-1].notification_id, 5)\n"
        "        print(source.read_ahead.process.pid, flush=True)\n"
        "        time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        # Running, not a zombie (a child that died at start-up would pass os.kill).
        state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert state != "Z", f"the ledger reader process {child} is not running"
        parent.send_signal(how)
        parent.wait(10)
        assert gone(child), f"the ledger reader process {child} outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
