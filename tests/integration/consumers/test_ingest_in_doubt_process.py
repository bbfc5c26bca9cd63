"""Ingest on the real broker when its ledger writer runs in a process of its own
(store/writer_process.py) and a commit lands but its answer never reaches the parent: the
child ends between the broker's commit and its answer. What test_ingest_in_doubt.py asserts
of the thread writer holds: the batch is counted once, its dead letters are published once,
and `audit verify` finds the ledger whole.

Nothing is faked in the test's process: the child runs tests/processes.py's entry point,
the product's own with one answer dropped (the child exits instead of sending it). Only a
child can drop it, so a loss that happened proves the writer ran in one.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bootstrap.root import Root
from cli.audit import app as audit_app
from store import factory
from store import ledger as ledger_module
from store.writer_process import ProcessLedgerWriter
from tests.integration.consumers.test_ingest_in_doubt import (
    LETTERS,
    counted_once,
    dead_letters,
    ingest_a_batch_judged_before,
    ingest_two_dead_letters,
)
from tests.ledger_compare import kafka_ledger_rows
from tests.processes import serve_losing_an_answer

pytestmark = pytest.mark.kafka


class Loss:
    """Arms the writer process's loss of an answer, and tells whether it happened."""

    def __init__(self, directory: Path) -> None:
        self.armed = directory / "armed"
        self.lost = directory / "lost"

    def arm(self) -> None:
        self.armed.touch()

    def happened(self) -> bool:
        return self.lost.exists() and not self.armed.exists()


@pytest.fixture(autouse=True)
def loss(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Loss:
    """The ledger's writers run in processes whose entry point loses an answer once armed
    (autouse: set before ``root`` bootstraps the ledger)."""
    loss = Loss(tmp_path)
    monkeypatch.setattr(factory, "usable_cores", lambda: 2)
    monkeypatch.setattr(
        ledger_module,
        "ProcessLedgerWriter",
        partial(ProcessLedgerWriter, entry=partial(serve_losing_an_answer, loss.armed, loss.lost)),
    )
    return loss


def verified(kafka_bootstrap: str, prefix: str, records: int) -> None:
    """`audit verify` on the ledger: contiguous ids and an unbroken chain of ``records``."""
    result = CliRunner().invoke(
        audit_app,
        ["verify", "--format", "json"],
        env={"EVLEDGER_KAFKA_BOOTSTRAP": kafka_bootstrap, "EVLEDGER_TOPIC_PREFIX": prefix},
    )
    assert result.exit_code == 0, result.output
    checks = {row["check"]: row["result"] for row in json.loads(result.stdout)}
    assert checks["records"] == records
    assert checks["notification ids"] == f"contiguous 1..{records}"
    assert checks["hash chain"].startswith(f"verified: {records} records")


def test_a_landed_commit_whose_answer_died_with_the_writer_process_counts_its_batch_once(
    root: Root, loss: Loss, tmp_path: Path, kafka_bootstrap: str, prefix: str
) -> None:
    counters, messages = ingest_a_batch_judged_before(root, tmp_path, loss.arm)
    assert loss.happened()
    ledger = kafka_ledger_rows(kafka_bootstrap, prefix, tmp_path / "reader")
    counted_once(counters, messages, ledger)
    verified(kafka_bootstrap, prefix, len(ledger))


def test_a_landed_commit_whose_answer_died_with_the_writer_process_publishes_its_dead_letters_once(
    root: Root, loss: Loss, tmp_path: Path, kafka_bootstrap: str, prefix: str
) -> None:
    loss.arm()
    ingest_two_dead_letters(root, tmp_path)
    assert loss.happened()
    assert dead_letters(kafka_bootstrap, prefix, "read_committed") == LETTERS
    assert dead_letters(kafka_bootstrap, prefix, "read_uncommitted") == LETTERS
    ledger = kafka_ledger_rows(kafka_bootstrap, prefix, tmp_path / "reader")
    verified(kafka_bootstrap, prefix, len(ledger))
