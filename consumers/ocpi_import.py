"""OCPI JSON files into ocpi.* upstream messages (JSON Lines), each object wrapped unchanged.

The kind of each object is told by its required fields (a CDR has charging_periods, a
Tariff elements, a Location time_zone). The event_id is the object's identity and version
(``ocpi.cdr:NL:EVL:CDR-1:<last_updated>``), so importing a file twice gives duplicates,
and a Tariff updated by its owner (new last_updated) is a new event. A CDR gets the
``time_zone`` given, else that of its Location (same country_code, party_id and
cdr_location.id) in the same import; without either it is still written, and the ledger
takes the zone of an ocpi.location it already holds, or records the CDR as rejected with
that reason rather than guess a zone. Locations and Tariffs are written before the CDRs
(each kind in the order given), so the CDRs of one import find them in the ledger.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from consumers.contract import ContractViolation
from consumers.ocpi_contract import encode

KINDS = (("charging_periods", "cdr"), ("elements", "tariff"), ("time_zone", "location"))
_ORDER = {"location": 0, "tariff": 1, "cdr": 2}


@dataclass
class ImportReport:
    """What an import wrote, per kind, and the CDRs that have no time zone."""

    counts: dict[str, int] = field(default_factory=dict)
    cdrs_without_zone: list[str] = field(default_factory=list)


def kind_of(document: Any) -> str:
    if isinstance(document, dict):
        for marker, kind in KINDS:
            if marker in document:
                return kind
    raise ContractViolation(
        "",
        "not an OCPI 2.2.1 Tariff, Location or CDR (no elements, time_zone or charging_periods)",
    )


def _text(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    return value if isinstance(value, str) else ""


def _event_id(kind: str, document: dict[str, Any]) -> str:
    parts = [_text(document, n) for n in ("country_code", "party_id", "id", "last_updated")]
    if all(parts):
        return f"ocpi.{kind}:" + ":".join(parts)
    # Without its identity the object is invalid anyway; a content hash keeps it traceable.
    return f"ocpi.{kind}:sha256:" + hashlib.sha256(encode(document).encode()).hexdigest()


def _occurred_at(document: dict[str, Any]) -> str:
    last_updated = _text(document, "last_updated")
    if last_updated and not last_updated.endswith("Z") and "+" not in last_updated[10:]:
        return last_updated + "Z"  # OCPI: no zone designator means UTC
    return last_updated or "1970-01-01T00:00:00Z"


def _location_key(document: dict[str, Any]) -> tuple[str, str, str]:
    return (_text(document, "country_code"), _text(document, "party_id"), _text(document, "id"))


def wrap(documents: list[Any], time_zone: str | None, report: ImportReport) -> list[str]:
    """One JSON line per OCPI object: Locations, then Tariffs, then CDRs, each in the order
    given (a CDR is re-priced with what the ledger holds when it arrives)."""
    kinds = [kind_of(document) for document in documents]
    zones = {
        _location_key(document): document["time_zone"]
        for document, kind in zip(documents, kinds, strict=True)
        if kind == "location" and isinstance(document.get("time_zone"), str)
    }
    lines = []
    ordered = sorted(zip(documents, kinds, strict=True), key=lambda pair: _ORDER[pair[1]])
    for document, kind in ordered:
        message: dict[str, Any] = {
            "type": f"ocpi.{kind}",
            "event_id": _event_id(kind, document),
            "occurred_at": _occurred_at(document),
            kind: document,
        }
        if kind == "cdr":
            location = document.get("cdr_location")
            key = (
                _text(document, "country_code"),
                _text(document, "party_id"),
                _text(location, "id") if isinstance(location, dict) else "",
            )
            zone = time_zone or zones.get(key)
            if zone is None:
                report.cdrs_without_zone.append(_text(document, "id"))
            else:
                message["time_zone"] = zone
        report.counts[kind] = report.counts.get(kind, 0) + 1
        lines.append(encode(message))
    return lines
