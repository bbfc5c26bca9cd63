"""The ledger export an auditor can load in DuckDB anywhere: write it, and read it back.

Layout of an export directory:
  ledger.parquet or ledger.jsonl   one row per ledger record, in ledger order
  manifest.json                    count, first/last ids and hashes, the file's SHA-256
Each row: notification_id, kafka_offset, originator_id, originator_version, topic (the
event class path), state_json (the state as JSON text, when it is JSON), state_base64 (the
exact stored bytes, so chain_hash can be recomputed), prev_hash, hash (hex), recorded_at,
and, on the last record of each of the writer's transactions where the ledger is signed,
key_id, signed_from and signature (hex).
The manifest is written last: a directory without one is not a finished export. With a
signing key configured it carries manifest_key_id and manifest_signature, an Ed25519
signature over its other keys (sorted, compact JSON), so it can serve as an anchor.
Columns and keys added since format 1 are optional: older exports read as unsigned.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audit.event_state import state_as_json_text
from audit.scan import ChainCompletion, LedgerScan, ScannedRecord
from audit.spill import DEFAULT_CAPACITY
from audit.verify import AuditReport, Check, Finding, verify_records
from store.records import FORMAT_VERSION, GENESIS_HASH
from store.signing import Keyring, LedgerSigner

if TYPE_CHECKING:
    from audit.anchors import Anchor

# Bump when a column or a manifest key changes meaning; readers refuse newer versions.
EXPORT_FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
COLUMNS = (
    "notification_id",
    "kafka_offset",
    "originator_id",
    "originator_version",
    "topic",
    "state_json",
    "state_base64",
    "prev_hash",
    "hash",
    "recorded_at",
    "key_id",
    "signed_from",
    "signature",
)
# Columns an export written before signatures lacks.
_OPTIONAL_COLUMNS = ("key_id", "signed_from", "signature")
# DuckDB types of the columns, for writing Parquet and for reading JSON Lines alike.
_DUCKDB_TYPES = {
    "notification_id": "BIGINT",
    "kafka_offset": "BIGINT",
    "originator_id": "VARCHAR",
    "originator_version": "BIGINT",
    "topic": "VARCHAR",
    "state_json": "VARCHAR",
    "state_base64": "VARCHAR",
    "prev_hash": "VARCHAR",
    "hash": "VARCHAR",
    "recorded_at": "TIMESTAMPTZ",
    "key_id": "VARCHAR",
    "signed_from": "BIGINT",
    "signature": "VARCHAR",
}
_FETCH_ROWS = 2000


class ExportFormat(StrEnum):
    parquet = "parquet"
    jsonl = "jsonl"

    @property
    def file_name(self) -> str:
        return f"ledger.{self.value}"


class ExportError(RuntimeError):
    """An export cannot be written or read; the reason names the file and what to do."""


@dataclass(frozen=True)
class ExportManifest:
    """What an export holds, to check the rows against (and to compare two exports)."""

    export_format_version: int
    record_format: str
    created_at: str
    source: str
    chain_origin: str
    chain_computed_records: int
    file: str
    file_format: str
    file_sha256: str
    count: int
    first_notification_id: int | None
    last_notification_id: int | None
    first_hash: str | None
    last_hash: str | None
    manifest_key_id: str | None = None
    manifest_signature: str | None = None
    # A sharded ledger's export: which shard this is, of how many (audit/shard_exports.py).
    # An unsharded ledger's manifest has neither key, as before shards.
    shard: int | None = None
    shards: int | None = None

    def _content(self) -> dict[str, Any]:
        content = asdict(self)
        if self.shards is None:
            del content["shard"], content["shards"]
        return content

    def to_json(self) -> str:
        return json.dumps(self._content(), indent=2) + "\n"

    def canonical(self) -> bytes:
        """The bytes the manifest signature covers: every key but the signature's own."""
        content = self._content()
        del content["manifest_key_id"], content["manifest_signature"]
        return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()

    def signed(self, signer: LedgerSigner) -> ExportManifest:
        unsigned = replace(self, manifest_key_id=None, manifest_signature=None)
        return replace(
            unsigned,
            manifest_key_id=signer.key_id,
            manifest_signature=signer.sign_manifest(unsigned.canonical()),
        )

    def signature_problem(self, keyring: Keyring) -> str | None:
        return keyring.manifest_problem(
            self.canonical(), self.manifest_key_id, self.manifest_signature
        )

    @classmethod
    def read(cls, directory: Path) -> ExportManifest:
        return cls.read_file(directory / MANIFEST_FILE)

    @classmethod
    def read_file(cls, path: Path) -> ExportManifest:
        directory = path.parent
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ExportError(
                f"{directory} is not an export: it has no {MANIFEST_FILE} (an unfinished "
                "export has none; export again)"
            ) from None
        except (OSError, ValueError) as error:
            raise ExportError(f"cannot read {path}: {error}") from None
        if not isinstance(data, dict):
            raise ExportError(f"{path} is not a manifest (not a JSON object)")
        version = data.get("export_format_version")
        if version != EXPORT_FORMAT_VERSION:
            raise ExportError(
                f"{path} is export format {version!r}; this evledger reads "
                f"{EXPORT_FORMAT_VERSION} (use the evledger version that wrote it)"
            )
        optional = ("manifest_key_id", "manifest_signature", "shard", "shards")
        values: dict[str, Any] = {name: data.get(name) for name in optional}
        try:
            values.update(
                {name: data[name] for name in cls.__dataclass_fields__ if name not in optional}
            )
        except KeyError as missing:
            raise ExportError(f"{path} lacks {missing}") from None
        return cls(**values)


def export_row(record: ScannedRecord) -> dict[str, Any]:
    """One record as a row of the export (JSON-ready values)."""
    return {
        "notification_id": record.notification_id,
        "kafka_offset": record.offset,
        "originator_id": record.originator_id,
        "originator_version": record.originator_version,
        "topic": record.topic,
        "state_json": state_as_json_text(record.state),
        "state_base64": base64.b64encode(record.state).decode("ascii"),
        "prev_hash": record.prev_hash.hex() if record.prev_hash is not None else None,
        "hash": record.hash.hex() if record.hash is not None else None,
        "recorded_at": record.recorded_at.astimezone(UTC).isoformat()
        if record.recorded_at
        else None,
        "key_id": record.key_id,
        "signed_from": record.signed_from,
        "signature": record.signature.hex() if record.signature is not None else None,
    }


def export_ledger(
    scan: LedgerScan,
    out_dir: Path,
    file_format: ExportFormat,
    on_record: Callable[[ScannedRecord], None] | None = None,
    signer: LedgerSigner | None = None,
    *,
    shard: tuple[int, int] | None = None,
) -> ExportManifest:
    """Write every record of the ledger to out_dir (new or empty) and return the manifest;
    ``shard`` (shard, shards) when the ledger is one shard of a sharded ledger.

    Records are copied as found, recorded hashes and signatures included, so a damaged
    ledger exports as damaged and verify on the export finds the same place. Where the
    ledger keeps no hashes (the embedded default) the chain is computed here. With a
    signer, the manifest is signed.
    """
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ExportError(f"{out_dir} is not empty; export into a new or empty directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / file_format.file_name
    lines_path = target if file_format is ExportFormat.jsonl else out_dir / ".ledger.jsonl.tmp"
    count = 0
    first: ScannedRecord | None = None
    last: ScannedRecord | None = None
    chain = ChainCompletion()
    with lines_path.open("w", encoding="utf-8") as lines:
        for record in chain.records(scan.records()):
            lines.write(json.dumps(export_row(record), separators=(",", ":")) + "\n")
            count += 1
            first = first or record
            last = record
            if on_record is not None:
                on_record(record)
    if file_format is ExportFormat.parquet:
        _jsonl_to_parquet(lines_path, target)
        lines_path.unlink()
    manifest = ExportManifest(
        export_format_version=EXPORT_FORMAT_VERSION,
        record_format=FORMAT_VERSION,
        created_at=datetime.now(UTC).isoformat(),
        source=scan.description,
        chain_origin=scan.chain_origin,
        chain_computed_records=chain.computed,
        file=target.name,
        file_format=file_format.value,
        file_sha256=file_sha256(target),
        count=count,
        first_notification_id=first.notification_id if first else None,
        last_notification_id=last.notification_id if last else None,
        first_hash=first.hash.hex() if first and first.hash else None,
        last_hash=last.hash.hex() if last and last.hash else None,
        shard=shard[0] if shard else None,
        shards=shard[1] if shard else None,
    )
    if signer is not None:
        manifest = manifest.signed(signer)
    (out_dir / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def _jsonl_to_parquet(lines_path: Path, target: Path) -> None:
    import duckdb

    columns = "{" + ", ".join(f"{name}: '{kind}'" for name, kind in _DUCKDB_TYPES.items()) + "}"
    connection = duckdb.connect()
    try:
        # Rows keep ledger order: the chain is checked in file order.
        connection.execute("SET preserve_insertion_order = true")
        connection.execute(
            f"COPY (SELECT * FROM read_json(?, format = 'newline_delimited', "
            f"columns = {columns})) TO '{_sql_path(target)}' (FORMAT parquet, COMPRESSION zstd)",
            [str(lines_path)],
        )
    finally:
        connection.close()


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class ExportScan:
    """The records of an export directory, in file order, with any damage as defects."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.manifest = ExportManifest.read(directory)
        self.path = directory / self.manifest.file
        if not self.path.exists():
            raise ExportError(f"{self.path} is missing; the manifest names it as the ledger")
        try:
            self.file_format = ExportFormat(self.manifest.file_format)
        except ValueError:
            raise ExportError(
                f"{directory}: unknown export file format {self.manifest.file_format!r}"
            ) from None

    @property
    def description(self) -> str:
        return f"export {self.directory} ({self.manifest.source})"

    @property
    def chain_origin(self) -> str:
        return "exported"

    def size_hint(self) -> int | None:
        return self.manifest.count

    def records(self) -> Iterator[ScannedRecord]:
        rows = (
            self._jsonl_rows() if self.file_format is ExportFormat.jsonl else self._parquet_rows()
        )
        for position, row in enumerate(rows, start=1):
            yield scanned_from_row(position, row)

    def _jsonl_rows(self) -> Iterator[dict[str, Any]]:
        with self.path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    row = {"_defect": f"line {number} is not JSON ({error})"}
                yield row if isinstance(row, dict) else {"_defect": f"line {number} is not a row"}

    def _parquet_rows(self) -> Iterator[dict[str, Any]]:
        import duckdb

        connection = duckdb.connect()
        try:
            try:
                present = {
                    str(row[0])
                    for row in connection.execute(
                        "DESCRIBE SELECT * FROM read_parquet(?)", [str(self.path)]
                    ).fetchall()
                }
            except duckdb.Error as error:
                raise ExportError(f"cannot read {self.path}: {error}") from None
            selected = ", ".join(
                "epoch_ms(recorded_at) AS recorded_at"
                if name == "recorded_at"
                else name
                if name in present or name not in _OPTIONAL_COLUMNS
                else f"NULL AS {name}"
                for name in COLUMNS
            )
            try:
                result = connection.execute(
                    f"SELECT {selected} FROM read_parquet(?, file_row_number = true) "
                    "ORDER BY file_row_number",
                    [str(self.path)],
                )
            except duckdb.Error as error:
                raise ExportError(f"cannot read {self.path}: {error}") from None
            while batch := result.fetchmany(_FETCH_ROWS):
                for values in batch:
                    row = dict(zip(COLUMNS, values, strict=True))
                    if row["recorded_at"] is not None:
                        row["recorded_at"] = datetime.fromtimestamp(
                            row["recorded_at"] / 1000, tz=UTC
                        )
                    yield row
        finally:
            connection.close()

    def manifest_findings(
        self, records: int, last_hash: bytes | None, keyring: Keyring | None = None
    ) -> list[Finding]:
        """What in the manifest disagrees with the rows (checked after the rows)."""
        manifest = self.manifest
        findings = []
        if keyring is not None:
            problem = manifest.signature_problem(keyring)
            if problem is not None:
                findings.append(
                    Finding(Check.AUTHENTICITY, f"{MANIFEST_FILE}: {problem}", MANIFEST_FILE)
                )
        if manifest.count != records:
            findings.append(
                Finding(
                    Check.EXPORT,
                    f"the manifest counts {manifest.count} records, the file holds {records}",
                )
            )
        found_last = last_hash.hex() if last_hash else None
        if manifest.last_hash != found_last:
            findings.append(
                Finding(
                    Check.EXPORT,
                    f"the manifest's last hash {manifest.last_hash} is not the last row's "
                    f"{found_last}",
                )
            )
        if file_sha256(self.path) != manifest.file_sha256:
            findings.append(
                Finding(
                    Check.EXPORT,
                    f"{self.path.name} is not the file the manifest describes (its SHA-256 "
                    "differs): it was rewritten after the export",
                )
            )
        return findings


def scanned_from_row(position: int, row: dict[str, Any]) -> ScannedRecord:
    """An export row as a ScannedRecord; damage becomes its defect, never an exception."""
    defects: list[str] = []
    if "_defect" in row:
        defects.append(str(row["_defect"]))
    try:
        state = base64.b64decode(row.get("state_base64") or "", validate=True)
    except (binascii.Error, ValueError, TypeError):
        defects.append("has a state_base64 that is not base64")
        state = b""
    state_json = row.get("state_json")
    expected_json = state_as_json_text(state)
    if state_json != expected_json:
        defects.append(
            "has a state_json that is not the text of its state_base64 (the JSON column was "
            "edited, and the hash covers only the exact bytes)"
        )
    recorded_at = row.get("recorded_at")
    if isinstance(recorded_at, str):
        try:
            recorded_at = datetime.fromisoformat(recorded_at)
        except ValueError:
            defects.append(f"has a recorded_at that is not a time: {recorded_at!r}")
            recorded_at = None
    signature = row.get("signature")
    try:
        signature_bytes = bytes.fromhex(signature) if isinstance(signature, str) else None
    except ValueError:
        defects.append("has a signature that is not hex")
        signature_bytes = None
    key_id = row.get("key_id")
    return ScannedRecord(
        key_id=key_id if isinstance(key_id, str) else None,
        signature=signature_bytes,
        signed_from=_integer(row, "signed_from", defects),
        position=position,
        offset=_integer(row, "kafka_offset", defects),
        notification_id=_integer(row, "notification_id", defects, required=True),
        originator_id=str(row.get("originator_id") or ""),
        originator_version=_integer(row, "originator_version", defects, required=True),
        topic=row.get("topic") if isinstance(row.get("topic"), str) else None,
        state=state,
        prev_hash=_digest(row, "prev_hash", defects),
        hash=_digest(row, "hash", defects),
        recorded_at=recorded_at if isinstance(recorded_at, datetime) else None,
        defect="; ".join(defects) or None,
    )


def _integer(
    row: dict[str, Any], name: str, defects: list[str], required: bool = False
) -> int | None:
    value = row.get(name)
    if value is None:
        if required:
            defects.append(f"has no {name}")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        defects.append(f"has a {name} that is not an integer: {value!r}")
        return None
    return value


def _digest(row: dict[str, Any], name: str, defects: list[str]) -> bytes | None:
    value = row.get(name)
    if value is None:
        return None
    try:
        digest = bytes.fromhex(str(value))
    except ValueError:
        digest = b""
    if len(digest) != len(GENESIS_HASH):
        defects.append(f"has a {name} that is not a 64-digit hex SHA-256")
        return None
    return digest


def verify_export(
    directory: Path,
    on_record: Callable[[ScannedRecord], None] | None = None,
    keyring: Keyring | None = None,
    anchors: Sequence[Anchor] = (),
    *,
    state_cache_size: int = DEFAULT_CAPACITY,
) -> AuditReport:
    """Every check of verify on an export's rows, then the manifest against the rows."""
    scan = ExportScan(directory)
    report = verify_records(
        scan.records(),
        scan.description,
        on_record,
        keyring,
        anchors,
        state_cache_size=state_cache_size,
    )
    if report.ok:
        report.findings.extend(
            scan.manifest_findings(report.summary.records, report.summary.last_hash, keyring)
        )
    return report
