"""A read model whose batches leave its derived columns to one ``rejoin`` after the last
batch (``ReadModel.rejoined_at_end``, a rebuild worker's) ends with the rows the batches
derive one by one."""

from __future__ import annotations

from pathlib import Path

from domain.application import BillingApplication
from projections.databases.port import Row
from projections.databases.sqlite import SqliteDatabase
from projections.payment_history import PaymentHistory
from projections.read_model import ReadModel
from projections.refund_status import RefundStatusView
from projections.runner import LedgerSource, Projector
from tests.unit.projections.scenario import build_ledger


def _rows(models: list[ReadModel]) -> dict[str, list[Row]]:
    return {
        table: models[0].db.execute(f"SELECT * FROM {table} ORDER BY {order}")
        for model in models
        for table, order in model.tables.items()
    }


def _projected(path: Path, application: BillingApplication, at_end: bool) -> list[ReadModel]:
    db = SqliteDatabase(path)
    models: list[ReadModel] = [PaymentHistory(db), RefundStatusView(db)]
    if at_end:
        models = [model.rejoined_at_end() for model in models]
    projector = Projector(LedgerSource.of(application), models, batch_size=7)
    projector.create()
    projector.run_until_idle()
    return models


def test_one_rejoin_after_the_batches_gives_the_rows_the_batches_derive(tmp_path: Path) -> None:
    application = BillingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    build_ledger(application)
    each = _projected(tmp_path / "each.sqlite3", application, at_end=False)
    at_end = _projected(tmp_path / "end.sqlite3", application, at_end=True)
    # Not vacuous: the batches left derived columns out.
    assert _rows(at_end) != _rows(each)
    for model in at_end:
        with model.db.transaction():
            model.rejoin()
    assert _rows(at_end) == _rows(each)
    assert all(model.rejoins_each_batch for model in each)
