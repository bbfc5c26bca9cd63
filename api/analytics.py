"""The analytics report as the API serves it: one function, whatever the report holds."""

from __future__ import annotations

from typing import Any

from fastapi.encoders import jsonable_encoder

from projections.sql import DuckDatabase


def report_document(db: DuckDatabase) -> dict[str, Any]:
    """The report as JSON: its sections, each with a title, columns and rows."""
    from projections.analytics_queries import build_report

    return {
        "sections": [
            {"title": table.title, "columns": table.columns, "rows": jsonable_encoder(table.rows)}
            for table in build_report(db)
        ]
    }


def report_page(db: DuckDatabase) -> str:
    """The report as a self-contained HTML page."""
    from projections.analytics_queries import build_report, report_html

    return report_html(build_report(db))
