"""The export of a sharded ledger: one export per shard, side by side.

Layout: ``<out>/shard-<p>/`` for p = 0 .. N-1, each an ordinary export (its ledger file
and manifest, audit/export.py) of shard p, its own chain from the genesis hash; each
manifest carries ``shard`` and ``shards`` (signed with the rest), so a missing or
misplaced shard directory is found, and each shard's manifest is the anchor of its chain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from audit.export import (
    MANIFEST_FILE,
    ExportError,
    ExportFormat,
    ExportManifest,
    export_ledger,
)
from audit.scan import LedgerScan, ScannedRecord
from store.signing import LedgerSigner


def shard_dir(directory: Path, shard: int) -> Path:
    return directory / f"shard-{shard}"


def export_shards(
    scans: Sequence[LedgerScan],
    out_dir: Path,
    file_format: ExportFormat,
    on_record: Callable[[ScannedRecord], None] | None = None,
    signer: LedgerSigner | None = None,
) -> list[ExportManifest]:
    """Export every shard (``scans``, shard 0 first) into ``out_dir``/shard-<p>; the
    manifests, shard 0 first."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ExportError(f"{out_dir} is not empty; export into a new or empty directory")
    return [
        export_ledger(
            scan,
            shard_dir(out_dir, shard),
            file_format,
            on_record,
            signer,
            shard=(shard, len(scans)),
        )
        for shard, scan in enumerate(scans)
    ]


def sharded_export(directory: Path) -> list[Path] | None:
    """The shard exports of a sharded ledger's export directory, shard 0 first; None when
    ``directory`` is an unsharded ledger's export. ExportError when a shard is missing or
    a manifest names another place than its own."""
    if (directory / MANIFEST_FILE).exists() or not shard_dir(directory, 0).is_dir():
        return None
    shards = ExportManifest.read(shard_dir(directory, 0)).shards
    if shards is None:
        raise ExportError(
            f"{shard_dir(directory, 0)} is not a shard's export: its manifest names no shards"
        )
    directories = [shard_dir(directory, shard) for shard in range(shards)]
    for shard, place in enumerate(directories):
        manifest = ExportManifest.read(place)
        if (manifest.shard, manifest.shards) != (shard, shards):
            raise ExportError(
                f"{place / MANIFEST_FILE} names shard {manifest.shard} of {manifest.shards}, "
                f"not shard {shard} of {shards}: the shard exports were moved or mixed"
            )
    return directories
