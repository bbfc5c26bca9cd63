"""The auditor's per-aggregate state spilled to disk: the map behaves as a dict, and an audit
that keeps one entry in memory reports exactly what one that keeps them all does."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import pytest

from audit.event_state import event_name
from audit.export import ExportScan
from audit.scan import ScannedRecord
from audit.spill import SpillFile, SpillMap
from audit.verify import AuditReport, verify_records
from tests.golden.golden import EXPORT_DIR
from tests.unit.audit.ledger_builder import state_bytes


@dataclass
class Tally:
    count: int = 0


@pytest.mark.parametrize("capacity", [1, 2, 7])
def test_a_spill_map_holds_every_entry_whatever_its_memory(capacity: int) -> None:
    spill = SpillFile()
    spilled: SpillMap[Tally] = SpillMap(spill, capacity)
    expected: dict[str, Tally] = {}
    for step in range(400):
        key = f"aggregate-{(step * 37) % 53}"
        spilled.setdefault(key, Tally()).count += 1
        expected.setdefault(key, Tally()).count += 1
    assert len(spilled) == len(expected) == 53
    for key, tally in expected.items():
        assert key in spilled
        assert spilled[key] == tally
    assert spilled.get("never seen") is None
    assert "never seen" not in spilled
    with pytest.raises(KeyError):
        spilled["never seen"]
    spilled["aggregate-0"] = Tally(-1)
    assert len(spilled) == 53
    assert spilled.get("aggregate-0") == Tally(-1)
    spill.close()


def test_a_spill_map_keeps_at_least_one_entry_in_memory() -> None:
    with pytest.raises(ValueError, match="at least one"):
        SpillMap(SpillFile(), 0)


def golden_records() -> list[ScannedRecord]:
    return list(ExportScan(EXPORT_DIR).records())


def same_reports(found: list[ScannedRecord]) -> AuditReport:
    in_memory = verify_records(found, "golden", state_cache_size=1_000_000)
    spilled = verify_records(found, "golden", state_cache_size=1)
    assert spilled.summary == in_memory.summary
    assert spilled.findings == in_memory.findings
    return spilled


def test_the_golden_ledger_audits_the_same_with_one_aggregate_in_memory() -> None:
    report = same_reports(golden_records())
    assert report.ok, report.findings
    assert report.summary.aggregates > 50
    assert report.summary.refunds_issued > 0


@pytest.mark.parametrize(
    ("event", "field", "value"),
    [
        ("Refund.Issued", "amount_minor", 1),
        ("Payment.Captured", "captured_minor", 10**9),
        ("ChargingSession.Priced", "total_minor", 7),
        ("Payment.RefundApproved", "refundable_balance_minor", -5),
    ],
)
def test_damage_late_in_the_golden_ledger_is_found_the_same_when_state_is_spilled(
    event: str, field: str, value: int
) -> None:
    # Without hashes the walk goes past the edit to the checks that need earlier state.
    found = [replace(r, hash=None, prev_hash=None) for r in golden_records()]
    last = max(
        i for i, r in enumerate(found) if r.topic is not None and event_name(r.topic) == event
    )
    state = json.loads(found[last].state)
    state[field] = value
    found[last] = replace(found[last], state=state_bytes(state))
    report = same_reports(found)
    assert report.first is not None, "the damage went unnoticed"
    assert report.first.notification_id == found[last].notification_id
