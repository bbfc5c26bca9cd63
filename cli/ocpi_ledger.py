"""`evledger ocpi cdrs`: the roaming CDRs in the payment history, with their reconciliation."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.context import current_root
from cli.options import FormatOption
from cli.output import OutputFormat, render
from cli.queries import _fail, _reporting_database_errors

_TABLE_COLUMNS = (
    "country_code",
    "party_id",
    "cdr_id",
    "started_at",
    "currency",
    "status",
    "billed_minor",
    "repriced_incl_vat_minor",
    "difference_minor",
    "reconciliation",
)


def party(value: str | None) -> tuple[str | None, str | None]:
    """``CC:PID`` (an OCPI country code and party id) as its two parts."""
    if value is None:
        return None, None
    country_code, _, party_id = value.partition(":")
    if len(country_code) != 2 or len(party_id) != 3:
        raise _fail(f"--party must be CC:PID (e.g. NL:EVL), got {value!r}", 2)
    return country_code, party_id


def cdrs(
    party_option: Annotated[
        str | None, typer.Option("--party", help="Only this OCPI party, CC:PID (e.g. NL:EVL).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 500,
    output_format: FormatOption = OutputFormat.table,
) -> None:
    """Roaming CDRs newest first: billed, re-priced, the difference and the reason."""
    from projections.roaming_cdrs import CDR_COLUMNS, query_cdrs

    country_code, party_id = party(party_option)
    root = current_root()
    db = root.views_database()
    try:
        with _reporting_database_errors(root):
            rows = query_cdrs(db, country_code=country_code, party_id=party_id, limit=limit)
    finally:
        db.close()
    columns = list(_TABLE_COLUMNS if output_format is OutputFormat.table else CDR_COLUMNS)
    render(rows, columns, output_format, "Roaming CDRs")
