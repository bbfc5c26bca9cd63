"""The golden ledger, written by an earlier evledger, must stay readable forever: it
verifies (chain, signatures, business facts, pinned last hash), every event decodes through
today's mapper, and projecting it gives the read-model checksums committed with it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from audit.anchors import Anchor
from audit.export import ExportScan, verify_export
from bootstrap import bootstrap
from bootstrap.settings import Settings
from store.signing import Keyring
from tests.golden.golden import EXPORT_DIR, KEYS_DIR, expected_checksums, project

# Pinned here, not read from the manifest: a golden ledger swapped for another fails.
LAST_NOTIFICATION_ID = 361
LAST_HASH = "726cc80f4472ca5445271ce5d6874607db3ca391188926ddcde597dd1fbc3e05"


def test_the_golden_ledger_verifies_with_its_signatures_and_anchor() -> None:
    report = verify_export(
        EXPORT_DIR,
        keyring=Keyring.load([KEYS_DIR]),
        anchors=[Anchor(bytes.fromhex(LAST_HASH), LAST_NOTIFICATION_ID, "the golden test")],
    )
    assert report.ok, [str(finding) for finding in report.findings]
    assert report.summary.records == LAST_NOTIFICATION_ID
    # One signature per writer transaction (three batches of commands).
    assert report.summary.signed_records == 3
    assert report.summary.anchors_met == 1


def test_every_golden_event_decodes_through_todays_mapper(tmp_path: Path) -> None:
    root = bootstrap(Settings.embedded_in(tmp_path))
    application = root.application()
    try:
        decoded: Counter[str] = Counter()
        for record in ExportScan(EXPORT_DIR).records():
            assert record.notification_id is not None and record.topic is not None
            stored = StoredEvent(
                originator_id=UUID(record.originator_id),
                originator_version=record.originator_version,
                topic=record.topic,
                state=record.state,
            )
            event = application.mapper.to_domain_event(stored)
            decoded[type(event).__qualname__] += 1
        assert sum(decoded.values()) == LAST_NOTIFICATION_ID
        assert decoded["ChargingSession.Priced"] == 25
    finally:
        root.close()


def test_the_golden_ledger_projects_to_the_committed_checksums(tmp_path: Path) -> None:
    assert project(EXPORT_DIR, tmp_path) == expected_checksums()
