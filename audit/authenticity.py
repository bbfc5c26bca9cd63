"""Whether every record lies in a transaction the ledger's writer signed (store/signing.py).

Records arrive in ledger order. Those since the last verified signature wait; a record
carrying a signature by a trusted key over (signed_from, its hash) vouches for the waiting
records from notification id signed_from on, and a trusted anchor (audit/anchors.py) for
every record up to its own. A waiting record below signed_from, or still waiting when the
ledger ends, was appended by someone other than the writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from audit.scan import ScannedRecord
from store.signing import Keyring


@dataclass(frozen=True)
class Unsigned:
    """A record no trusted signature vouches for, and why."""

    record: ScannedRecord
    reason: str


@dataclass
class SignatureCoverage:
    keyring: Keyring
    _waiting: list[ScannedRecord] = field(default_factory=list)

    def observe(self, record: ScannedRecord) -> Unsigned | None:
        """Take the next record; the first record found unsigned so far, if any."""
        if record.hash is None:
            return Unsigned(
                record,
                "the record has no hash, so nothing of it is signed (the embedded SQLite "
                "ledger is not signed; a signed ledger is the Kafka one)",
            )
        self._waiting.append(record)
        if record.signature is None and record.key_id is None and record.signed_from is None:
            return None
        if record.signed_from is None:
            return Unsigned(record, "the record's signature names no signed_from id")
        problem = self.keyring.transaction_problem(
            record.signed_from, record.hash, record.key_id, record.signature
        )
        if problem is not None:
            first = self._waiting[0]
            span = (
                f" (it would vouch for notification ids {record.signed_from}.."
                f"{record.notification_id})"
            )
            return Unsigned(
                record if first is record else first,
                f"{problem}{span}: records appended by someone other than the ledger's "
                "writer, or changed since",
            )
        waiting, self._waiting = self._waiting, []
        for earlier in waiting:
            if earlier.notification_id is not None and earlier.notification_id < record.signed_from:
                return Unsigned(
                    earlier,
                    f"no signature of a trusted key vouches for this record (the next "
                    f"signed transaction starts at notification id {record.signed_from}): "
                    "it was appended by someone other than the ledger's writer",
                )
        return None

    def vouch(self) -> None:
        """A trusted anchor matched the last record: it and every record before it are
        the ledger's (how a ledger signed only since some day verifies whole)."""
        self._waiting = []

    def finish(self) -> Unsigned | None:
        """After the last record: the start of an unsigned tail, if the ledger has one."""
        if not self._waiting:
            return None
        return Unsigned(
            self._waiting[0],
            f"the record is not signed: no signature of a trusted key vouches for the "
            f"ledger's last {len(self._waiting)} record(s) from here on, so they were "
            "appended by someone other than the ledger's writer",
        )
