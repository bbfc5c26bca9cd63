"""Run by test_exactly_once as a subprocess: project a SQLite ledger slowly, printing each
committed batch, until the test kills it with SIGKILL in the middle of a batch."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from domain.application import BillingApplication
from projections.analytics import Analytics
from projections.databases.duckdb import DuckDatabase
from projections.databases.postgres import PostgresDatabase
from projections.facts import Entity
from projections.fold import Rows
from projections.payment_history import PaymentHistory
from projections.refund_status import RefundStatusView
from projections.runner import LedgerSource, Projector


def slow(model_class: type) -> type:
    class Slow(model_class):  # type: ignore[misc]
        def write(self, rows: dict[Entity, Rows]) -> None:
            super().write(rows)
            # Rows written and position moved, not yet committed: the kill lands here.
            time.sleep(0.05)

        def apply(self, batch: list, facts: list | None = None) -> None:  # type: ignore[type-arg]
            super().apply(batch, facts)
            print(f"committed {self.name} {batch[-1].notification_id}", flush=True)

    return Slow


def main() -> None:
    ledger_path, dsn, schema, duck_path = sys.argv[1:5]
    app = BillingApplication(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": ledger_path}
    )
    pg = PostgresDatabase(dsn, schema=schema)
    models = [
        slow(PaymentHistory)(pg),
        slow(RefundStatusView)(pg),
        slow(Analytics)(DuckDatabase(Path(duck_path))),
    ]
    projector = Projector(LedgerSource.of(app), models, batch_size=100)
    projector.create()
    print("started", flush=True)
    projector.run_until_idle()
    print("idle", flush=True)


if __name__ == "__main__":
    main()
