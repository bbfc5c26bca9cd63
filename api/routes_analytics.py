"""GET /v1/analytics/report: the analysts' report, as JSON or an HTML page."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse

from api.analytics import report_document, report_page
from api.auth import require
from api.keys import ApiKey, Role
from api.problems import Problem, problem_responses
from api.state import api_state
from projections.report import Filters

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
def report(  # noqa: PLR0917 - FastAPI passes parameters by name
    request: Request,
    key: Annotated[ApiKey, Depends(require(Role.analyst))],
    format: Annotated[Literal["json", "html"], Query()] = "json",
    date_from: Annotated[
        date | None, Query(alias="from", description="First local date (YYYY-MM-DD).")
    ] = None,
    date_to: Annotated[
        date | None, Query(alias="to", description="Last local date (YYYY-MM-DD).")
    ] = None,
    station: Annotated[str | None, Query(max_length=200)] = None,
    currency: Annotated[str | None, Query(pattern="^[A-Z]{3}$")] = None,
) -> Any:
    """Revenue, usage, utilisation, pricing, customers, refunds and the trial balance."""
    from projections.analytics_queries import open_read_only
    from projections.databases.errors import ReadModelDatabaseError
    from projections.report import SeveralCurrencies

    filters = Filters(date_from=date_from, date_to=date_to, station=station, currency=currency)
    path = api_state(request).root.settings.analytics_path
    try:
        db = open_read_only(path)
        try:
            if format == "html":
                return HTMLResponse(report_page(db, filters))
            return JSONResponse(jsonable_encoder(report_document(db, filters)))
        finally:
            db.close()
    except SeveralCurrencies as several:
        raise Problem(422, f"{several}; add ?currency=") from None
    except FileNotFoundError:
        raise Problem(
            503, "the analytics database is not built yet (run `evledger project`)"
        ) from None
    except ReadModelDatabaseError as error:
        raise Problem(503, f"the analytics database cannot be read now: {error}") from None
