"""The analysts' report as the API serves it: the report's own JSON document, or its page."""

from __future__ import annotations

from typing import Any

from projections.databases.duckdb import DuckDatabase
from projections.report import Filters, build_report


def report_document(db: DuckDatabase, filters: Filters) -> dict[str, Any]:
    """The report as `evledger analytics report --format json` prints it."""
    from projections.report_formats import to_document

    return to_document(build_report(db, filters))


def report_page(db: DuckDatabase, filters: Filters) -> str:
    """The report as a self-contained HTML page."""
    from projections.report_html import report_html

    return report_html(build_report(db, filters))
