"""Anchors: a hash the auditor already trusts, which the ledger must still contain.

A chain proves only that records follow each other. Cut its tail off, or rewrite it from
the first record with the project's own chain_hash, and it is a valid chain again. An
anchor kept from an earlier audit (a last hash, or a signed export manifest) defeats
both: the record it names must still be there, at its notification id, with its hash.
On a sharded ledger each shard is its own chain, so an anchor names its shard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from audit.scan import ScannedRecord
from store.signing import Keyring


class AnchorError(ValueError):
    """An anchor cannot be read or trusted; the message says which and why."""


@dataclass(frozen=True)
class Anchor:
    """The ledger (its shard ``shard``, on a sharded ledger) holds ``hash`` (at
    ``notification_id``, when given)."""

    hash: bytes
    notification_id: int | None = None
    source: str = "--expect-last-hash"
    shard: int | None = None

    def describe(self) -> str:
        at = f"notification id {self.notification_id} with " if self.notification_id else ""
        return f"{at}hash {self.hash.hex()[:16]}... (from {self.source})"


def anchors_of_shard(anchors: Sequence[Anchor], shard: int | None) -> list[Anchor]:
    """The anchors to check on ``shard`` of a sharded ledger (None: an unsharded ledger,
    which takes the anchors that name no shard). An anchor of the other kind is refused."""
    for anchor in anchors:
        if (anchor.shard is None) != (shard is None):
            raise AnchorError(
                f"the anchor {anchor.describe()} names no shard, and this ledger is sharded: "
                "give --shard with --expect-last-hash, or a shard's export manifest"
                if shard is not None
                else f"the anchor {anchor.describe()} is of shard {anchor.shard} of a sharded "
                "ledger, and this ledger (or export) is not sharded"
            )
    return [anchor for anchor in anchors if anchor.shard == shard]


def anchor_from_hash(
    hex_hash: str, notification_id: int | None, shard: int | None = None
) -> Anchor:
    try:
        digest = bytes.fromhex(hex_hash.strip())
    except ValueError:
        digest = b""
    if len(digest) != 32:
        raise AnchorError(f"--expect-last-hash takes a 64-digit hex SHA-256, got {hex_hash!r}")
    return Anchor(digest, notification_id, shard=shard)


def anchor_from_manifest(path: Path, keyring: Keyring | None) -> Anchor:
    """The last record named by an export's manifest (a file, or its export directory).

    With trusted keys the manifest must carry a valid signature: an unsigned anchor could
    have been recomputed by whoever truncated the ledger.
    """
    from audit.export import MANIFEST_FILE, ExportError, ExportManifest

    try:
        manifest = ExportManifest.read_file(path / MANIFEST_FILE if path.is_dir() else path)
    except ExportError as error:
        raise AnchorError(f"cannot use the anchor {path}: {error}") from None
    if keyring is not None:
        problem = manifest.signature_problem(keyring)
        if problem is not None:
            raise AnchorError(f"the anchor {path} cannot be trusted: {problem}")
    if manifest.last_hash is None:
        raise AnchorError(f"the anchor {path} names no last hash (its export was empty)")
    return Anchor(
        bytes.fromhex(manifest.last_hash),
        manifest.last_notification_id,
        f"anchor {path}",
        manifest.shard,
    )


@dataclass
class AnchorCheck:
    """Watches the records go by; says where the ledger departs from its anchors."""

    anchors: tuple[Anchor, ...]
    _met: set[int] = field(default_factory=set)
    _last: ScannedRecord | None = None
    met_here: bool = False

    def observe(self, record: ScannedRecord) -> str | None:
        """What is wrong with the record against the anchors; ``met_here`` says whether it
        is an anchored record (which then vouches for itself and every record before it)."""
        self._last = record
        self.met_here = False
        for number, anchor in enumerate(self.anchors):
            if anchor.notification_id is not None:
                if record.notification_id != anchor.notification_id:
                    continue
                if record.hash != anchor.hash:
                    found = record.hash.hex()[:16] + "..." if record.hash else "no hash"
                    return (
                        f"the anchor expects {anchor.describe()}; this record has {found}: "
                        "the ledger was rewritten from here or earlier"
                    )
                self._met.add(number)
                self.met_here = True
            elif record.hash == anchor.hash:
                self._met.add(number)
                self.met_here = True
        return None

    def unmet(self) -> list[str]:
        """The anchors the whole ledger did not contain (checked after the last record)."""
        ends = (
            f"ends at notification id {self._last.notification_id}"
            if self._last is not None
            else "is empty"
        )
        return [
            f"the ledger {ends} and does not contain {anchor.describe()}: records were "
            "removed from its end (truncated) or the ledger was rewritten"
            for number, anchor in enumerate(self.anchors)
            if number not in self._met
        ]
