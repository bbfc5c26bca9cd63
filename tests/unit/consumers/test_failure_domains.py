"""No exception from one message escapes its batch, and a signal ends a stuck batch."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from consumers import triage as triage_module
from consumers.triage import SourceRecord, triage
from tests.unit.consumers.test_contract import encode


def record(offset: int, value: bytes) -> SourceRecord:
    return SourceRecord(topic="t", partition=0, offset=offset, key=None, value=value)


def test_an_unexpected_error_reading_one_message_dead_letters_it_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = triage_module.to_command

    def to_command(message: Any) -> Any:
        if message.event_id == "boom":
            raise RecursionError("maximum recursion depth exceeded")
        return real(message)

    monkeypatch.setattr(triage_module, "to_command", to_command)
    records = [
        record(1, encode("payment.captured", event_id="a")),
        record(2, encode("payment.captured", event_id="boom")),
        record(3, encode("payment.captured", event_id="c")),
    ]
    sorted_out = triage(records)
    assert [r.offset for r, _ in sorted_out.commands] == [1, 3]
    (letter,) = sorted_out.dead_letters
    assert letter.source_offset == 2
    assert "internal error" in letter.reason and "RecursionError" in letter.reason


def test_real_poison_never_escapes_triage() -> None:
    poison = [
        b"[" * 200_000,
        encode("payment.captured").replace(b"}", b', "x": ' + b"[" * 200_000 + b"}"),
        encode("payment.captured").replace(
            b'"amount_minor": 1234', b'"amount_minor": ' + b"9" * 9000
        ),
        encode("tariff.published", vat_rate="1e-999999999"),
        b"\x00" * 10,
        json.dumps({"type": "x" * 100_000}).encode(),
    ]
    sorted_out = triage([record(i, value) for i, value in enumerate(poison)])
    assert len(sorted_out.dead_letters) == len(poison)
    assert not sorted_out.commands


STUCK = textwrap.dedent(
    """
    import sys, time
    from consumers.ingest import StopFlag
    stop = StopFlag()
    stop.grace_s = 0.5
    with stop.on_signals():
        print("ready", flush=True)
        while True:  # a batch that never finishes
            time.sleep(0.05)
    """
)


def test_sigterm_ends_a_stuck_batch_after_the_grace_period(tmp_path: Path) -> None:
    script = tmp_path / "stuck.py"
    script.write_text(STUCK)
    child = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=Path(__file__).parents[3],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGTERM)
    try:
        _, err = child.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        child.kill()
        raise AssertionError("the signalled process never exited") from None
    assert child.returncode == 1
    assert "did not finish the batch" in err
