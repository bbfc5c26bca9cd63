"""One fuzz run: messages through the real contract, domain, embedded ledger, projections
(SQLite and DuckDB) and audit, with the invariants checked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audit.sqlite_scan import SqliteLedgerScan
from audit.verify import verify_records
from bootstrap import Settings, bootstrap
from consumers.file_ingest import FileIngest
from domain.application import BillingApplication
from projections.runner import LedgerSource, Projector, RetryPolicy
from replay.checksum import model_checksums


@dataclass
class FuzzFigures:
    consumed: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    rejected: int = 0
    ledger_events: int = 0

    def add(self, other: FuzzFigures) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def run_messages(messages: list[bytes], workdir: Path) -> FuzzFigures:
    """Ingest, project, rebuild and audit ``messages``; raises AssertionError on any breach."""
    upstream = workdir / "upstream.jsonl"
    upstream.write_bytes(b"".join(raw + b"\n" for raw in messages))
    live = Settings.embedded_in(workdir / "live")
    application = BillingApplication(env=bootstrap(live).ledger.environment())
    try:
        counters = FileIngest(application, upstream, workdir / "dead-letters.jsonl").run()
        assert counters.consumed == len([m for m in messages if m.strip()])
        assert counters.consumed == counters.applied + counters.duplicates + counters.dead_lettered
        source = LedgerSource.of(application)
        models = bootstrap(live).read_models()
        rebuilt = bootstrap(Settings.embedded_in(workdir / "rebuild")).read_models()
        try:
            # Live: projected in small batches as ingest would; rebuild: in one pass.
            for runner_models, batch in ((models, 7), (rebuilt, 5000)):
                runner = Projector(source, runner_models, batch_size=batch, retry=RetryPolicy(2))
                runner.create()
                runner.run_until_idle()
                assert not runner.stopped, [s.describe() for s in runner.stopped.values()]
            for live_model, rebuilt_model in zip(models, rebuilt, strict=True):
                assert model_checksums(live_model) == model_checksums(rebuilt_model)
        finally:
            for model in (*models, *rebuilt):
                model.db.close()
        ledger_events = source.last_position()
    finally:
        application.close()
    scan = SqliteLedgerScan(live.data_dir / "ledger.sqlite3")
    report = verify_records(scan.records(), scan.description)
    assert report.ok, report.first
    return FuzzFigures(
        consumed=counters.consumed,
        applied=counters.applied,
        duplicates=counters.duplicates,
        dead_lettered=counters.dead_lettered,
        rejected=counters.rejected,
        ledger_events=ledger_events,
    )
