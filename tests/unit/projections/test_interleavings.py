"""Any interleaving of the aggregates' events (each aggregate's own order kept), in any
batch sizes, gives the same read models: a payment captured before its session is priced,
a refund before its payment is known. Real SQLite and DuckDB, in memory."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.application import BillingApplication
from projections.analytics import Analytics
from projections.databases.duckdb import DuckDatabase
from projections.databases.sqlite import SqliteDatabase
from projections.facts import LedgerEvent
from projections.payment_history import PaymentHistory
from projections.read_model import ReadModel
from projections.refund_status import RefundStatusView
from projections.runner import LedgerSource
from tests.unit.projections.scenario import build_ledger

# Postings and rejections are keyed by ledger position, which an interleaving renumbers.
_POSITIONAL = {"fact_postings", "fact_rejections"}


def _events() -> list[Any]:
    app = BillingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    build_ledger(app)
    return [e.event for e in LedgerSource.of(app).read_after(0, 10_000)]


EVENTS = _events()


def interleave(seed: int) -> list[Any]:
    queues: dict[Any, list[Any]] = defaultdict(list)
    for event in EVENTS:
        queues[event.originator_id].append(event)
    rng = random.Random(seed)
    merged = []
    while queues:
        originator = rng.choice(sorted(queues, key=str))
        merged.append(queues[originator].pop(0))
        if not queues[originator]:
            del queues[originator]
    return merged


def _unnumbered(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    numbering = {"notification_id", "line_no", "recorded_at"}
    return sorted(
        (tuple(v for k, v in row.items() if k not in numbering) for row in rows), key=repr
    )


def project(events: list[Any], batch_size: int) -> dict[str, Any]:
    views = SqliteDatabase(Path(":memory:"))
    duck = DuckDatabase(Path(":memory:"))
    models: list[ReadModel] = [PaymentHistory(views), RefundStatusView(views), Analytics(duck)]
    ledger = [LedgerEvent(n, event) for n, event in enumerate(events, start=1)]
    for model in models:
        model.create()
        for start in range(0, len(ledger), batch_size):
            model.apply(ledger[start : start + batch_size])
    result: dict[str, Any] = {}
    for model in models:
        for table, rows in model.snapshot().items():
            result[f"{model.name}.{table}"] = _unnumbered(rows) if table in _POSITIONAL else rows
    views.close()
    duck.close()
    return result


IN_LEDGER_ORDER = project(EVENTS, batch_size=len(EVENTS))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), batch_size=st.integers(1, 40))
def test_interleavings_give_the_same_read_models(seed: int, batch_size: int) -> None:
    assert project(interleave(seed), batch_size) == IN_LEDGER_ORDER


def test_the_comparison_sees_a_difference() -> None:
    """The property above can fail: dropping one event changes the read models."""
    assert project(EVENTS[:-3], batch_size=10) != IN_LEDGER_ORDER
