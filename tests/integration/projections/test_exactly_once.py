"""Guarantee 6: a projector that fails or is killed at any point, then restarted, ends with
read models identical to a clean rebuild (PostgreSQL and DuckDB, real SQLite ledger)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from domain.application import BillingApplication
from projections.analytics import Analytics
from projections.databases.duckdb import DuckDatabase
from projections.databases.postgres import PostgresDatabase, drop_schema
from projections.facts import Entity, Fact, LedgerEvent
from projections.fold import Rows
from projections.payment_history import PaymentHistory
from projections.read_model import ReadModel
from projections.refund_status import RefundStatusView
from projections.runner import LedgerSource, ProjectionStalled, Projector, RetryPolicy
from tests.unit.projections.scenario import traffic_ledger

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[3]
NO_WAIT = RetryPolicy(attempts=4, first_delay_s=0.0)


class InjectedFault(ConnectionError):
    """A database fault a retry cures (a dropped connection); an error that fails the same
    way every time stops its read model instead (tests/unit/projections/test_poison_event)."""


@pytest.fixture(scope="module")
def ledger_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ledger") / "ledger.sqlite3"
    app = BillingApplication(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    )
    assert traffic_ledger(app, days=1) > 1500
    app.close()
    return path


@pytest.fixture
def ledger(ledger_file: Path) -> Iterator[BillingApplication]:
    app = BillingApplication(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(ledger_file)}
    )
    yield app
    app.close()


def models(pg: PostgresDatabase, duck: DuckDatabase, wrap: Any = None) -> list[ReadModel]:
    classes: list[type[ReadModel]] = [PaymentHistory, RefundStatusView, Analytics]
    if wrap is not None:
        classes = [wrap(model_class) for model_class in classes]
    return [classes[0](pg), classes[1](pg), classes[2](duck)]


def snapshot(read_models: Sequence[ReadModel]) -> dict[str, Any]:
    return {model.name: (model.position(), model.snapshot()) for model in read_models}


@pytest.fixture
def clean(ledger: BillingApplication, pg_dsn: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The read models rebuilt from scratch in one go: what every recovery must equal."""
    schema = f"test_clean_{os.getpid()}_{id(tmp_path) % 100000}"
    pg = PostgresDatabase(pg_dsn, schema=schema)
    duck = DuckDatabase(tmp_path / "clean.duckdb")
    rebuilt = models(pg, duck)
    projector = Projector(LedgerSource.of(ledger), rebuilt, batch_size=10_000)
    projector.create()
    projector.run_until_idle()
    yield snapshot(rebuilt)
    pg.close()
    duck.close()
    drop_schema(pg_dsn, schema)


def with_faults(mid_batch: set[int], after_commit: set[int]) -> Any:
    """Model classes that fail on the given calls: inside the transaction after writing
    everything (so only a rollback saves them), or after the commit (the lost
    acknowledgement: a retry must not apply the batch twice)."""

    def wrap(model_class: type[ReadModel]) -> type[ReadModel]:
        class Faulty(model_class):  # type: ignore[valid-type, misc]
            calls = 0

            def apply(
                self, batch: Sequence[LedgerEvent], facts: Sequence[Fact] | None = None
            ) -> None:
                type(self).calls += 1
                self.call = type(self).calls
                super().apply(batch, facts)
                if self.call in after_commit:
                    raise InjectedFault(f"after committing batch {self.call}")

            def write(self, rows: dict[Entity, Rows]) -> None:
                if self.call in mid_batch:
                    # Position moved and one table written, the rest not: only the
                    # rollback keeps this half batch out of the read model.
                    first = next(iter(rows))
                    super().write({e: (r if e is first else {}) for e, r in rows.items()})
                    raise InjectedFault(f"in the middle of batch {self.call}")
                super().write(rows)

        return Faulty

    return wrap


def test_faults_between_and_inside_batches_change_nothing(
    ledger: BillingApplication, pg: PostgresDatabase, duck: DuckDatabase, clean: dict[str, Any]
) -> None:
    faulty = models(pg, duck, with_faults(mid_batch={2, 5, 6}, after_commit={3, 7}))
    projector = Projector(LedgerSource.of(ledger), faulty, batch_size=300, retry=NO_WAIT)
    projector.create()
    progress = projector.run_until_idle()
    assert all(p.retries >= 3 for p in progress.values())
    assert snapshot(faulty) == clean


def test_a_stalled_projector_keeps_its_position_and_resumes(
    ledger: BillingApplication, pg: PostgresDatabase, duck: DuckDatabase, clean: dict[str, Any]
) -> None:
    always_failing = set(range(4, 100))
    broken = models(pg, duck, with_faults(mid_batch=always_failing, after_commit=set()))
    projector = Projector(LedgerSource.of(ledger), broken, batch_size=250, retry=NO_WAIT)
    projector.create()
    with pytest.raises(ProjectionStalled, match="failed 4 times"):
        projector.run_until_idle()
    assert broken[0].position() == 750  # three batches committed, the fourth never
    healthy = models(pg, duck)
    Projector(LedgerSource.of(ledger), healthy, batch_size=250).run_until_idle()
    assert snapshot(healthy) == clean


def test_killed_mid_batch_then_restarted(  # noqa: PLR0917 - pytest fixtures
    ledger_file: Path,
    ledger: BillingApplication,
    pg_dsn: str,
    pg_schema: str,
    tmp_path: Path,
    clean: dict[str, Any],
) -> None:
    duck_path = tmp_path / "killed.duckdb"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.projections.crash_child",
            *(str(ledger_file), pg_dsn, pg_schema, str(duck_path)),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    commits = 0
    for line in child.stdout:
        if line.startswith("committed"):
            commits += 1
        if commits == 7:  # the next batch is now being written, uncommitted
            break
        assert line.strip() != "idle", "the projector finished before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    pg = PostgresDatabase(pg_dsn, schema=pg_schema)
    duck = DuckDatabase(duck_path)
    restarted = models(pg, duck)
    positions = {model.name: model.position() for model in restarted}
    assert 0 < min(positions.values()) < ledger.recorder.max_notification_id()  # type: ignore[operator]
    Projector(LedgerSource.of(ledger), restarted, batch_size=100).run_until_idle()
    assert snapshot(restarted) == clean
    pg.close()
    duck.close()
