"""GET /v1/analytics/report: the analysts' report, as JSON or an HTML page."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from api.analytics import report_document, report_page
from api.auth import require
from api.keys import ApiKey, Role
from api.problems import Problem, problem_responses
from api.state import api_state

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])


@router.get(
    "/report",
    responses={
        200: {
            "description": "The report: JSON sections, or with ?format=html an HTML page.",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/html": {"schema": {"type": "string"}},
            },
        },
        **problem_responses(401, 403, 422, 503),
    },
    response_class=JSONResponse,
)
def report(
    request: Request,
    key: Annotated[ApiKey, Depends(require(Role.analyst))],
    format: Annotated[Literal["json", "html"], Query()] = "json",
) -> Any:
    """Revenue, usage, utilisation, pricing, customers, refunds and the trial balance."""
    import duckdb

    from projections.analytics_queries import open_read_only

    path = api_state(request).settings.analytics_path
    try:
        db = open_read_only(path)
        try:
            if format == "html":
                return HTMLResponse(report_page(db))
            return JSONResponse(report_document(db))
        finally:
            db.close()
    except FileNotFoundError:
        raise Problem(
            503, "the analytics database is not built yet (run `evledger project`)"
        ) from None
    except duckdb.Error as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise Problem(503, f"the analytics database cannot be read now: {first}") from None
