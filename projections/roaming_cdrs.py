"""The roaming CDRs table (one row per OCPI CDR with its re-priced total and reconciliation),
declared once for the payment history database and for analytics, and its query."""

from __future__ import annotations

from projections.databases.port import Database, Row
from projections.entities import Entity
from projections.fold import Rows
from projections.tables import Table, columns

ROAMING_CDRS = Table(
    "roaming_cdrs",
    Entity.ROAMING_CDR,
    key=("cdr_key",),
    columns=columns(
        cdr_key="text",
        country_code="text",
        party_id="text",
        cdr_id="text",
        session_id="text",
        location_id="text",
        currency="text",
        started_at="ts",
        ended_at="ts",
        received_at="ts",
        credit="bool",
        credit_reference_id="text",
        tariff_id="text",
        time_zone="text",
        energy_kwh="decimal",
        status="text",
        billed_minor="bigint",
        repriced_excl_vat_minor="bigint",
        repriced_incl_vat_minor="bigint",
        difference_minor="bigint",
        tolerance_minor="bigint",
        reconciliation="text",
        rejection="text",
        reason="text",
        reversed_by="text",
        reversed_at="ts",
    ),
)

CDR_COLUMNS = tuple(c.name for c in ROAMING_CDRS.columns if c.name != "cdr_key")


def cdr_rows(rows: Rows) -> Rows:
    """The table's columns of each folded roaming-CDR row."""
    wanted = ROAMING_CDRS.value_columns
    return {key: {c: v for c, v in values.items() if c in wanted} for key, values in rows.items()}


def query_cdrs(
    db: Database,
    table: str = ROAMING_CDRS.name,
    *,
    country_code: str | None = None,
    party_id: str | None = None,
    limit: int = 500,
) -> list[Row]:
    """Roaming CDRs newest first (by session start), optionally of one OCPI party."""
    conditions, params = [], []
    if country_code is not None:
        conditions.append("upper(country_code) = ?")
        params.append(country_code.upper())
    if party_id is not None:
        conditions.append("upper(party_id) = ?")
        params.append(party_id.upper())
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    return db.execute(
        f"SELECT {', '.join(CDR_COLUMNS)} FROM {table} {where}"
        " ORDER BY started_at DESC, cdr_id DESC LIMIT ?",
        [*params, limit],
    )
