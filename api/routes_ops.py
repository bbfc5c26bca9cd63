"""Operations endpoints, open without a key: /healthz, /readyz and /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.problems import Problem
from api.schemas import Health, ProjectionLag, Readiness
from api.state import ApiState, api_state
from audit.ledger_head import LedgerUnreachable
from projections.tracking import tracked_position

router = APIRouter(tags=["operations"])
_VIEW_PROJECTIONS = ("payment_history", "refund_status")


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up (it checks nothing else)."""
    return Health()


def _views_positions(state: ApiState) -> tuple[str, dict[str, int | None]]:
    try:
        with state.views.connection() as db:
            return "ok", {name: tracked_position(db, name) for name in _VIEW_PROJECTIONS}
    except Problem as problem:
        return f"unavailable: {problem.detail}", dict.fromkeys(_VIEW_PROJECTIONS)
    except Exception as error:  # a missing tracking table, say: reported, not raised
        return f"unavailable: {type(error).__name__}", dict.fromkeys(_VIEW_PROJECTIONS)


def _analytics_position(state: ApiState) -> tuple[str, int | None]:
    import duckdb

    from projections.analytics_queries import open_read_only

    try:
        db = open_read_only(state.root.settings.analytics_path)
        try:
            return "ok", tracked_position(db, "analytics")
        finally:
            db.close()
    except FileNotFoundError:
        return "unavailable: not built yet (run `evledger project`)", None
    except duckdb.Error as error:
        return f"unavailable: {str(error).splitlines()[0] if str(error) else error!r}", None


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"description": "Not ready", "model": Readiness}},
)
def readyz(request: Request) -> JSONResponse:
    """Ready when the payment history / refund status database answers. Reports each
    projection's position and lag (ledger events not yet applied) and the analytics
    database, which serves only the analytics report."""
    state = api_state(request)
    views, positions = _views_positions(state)
    analytics, analytics_position = _analytics_position(state)
    positions["analytics"] = analytics_position
    try:
        head: int | None = state.ledger_head.last_notification_id()
        ledger = "ok"
    except LedgerUnreachable as error:
        head, ledger = None, f"unavailable: {error}"
    projections = {
        name: ProjectionLag(
            position=position,
            lag=None if position is None or head is None else max(0, head - position),
        )
        for name, position in positions.items()
    }
    readiness = Readiness(
        ready=views == "ok",
        views_database=views,
        analytics_database=analytics,
        ledger=ledger,
        ledger_position=head,
        projections=projections,
    )
    return JSONResponse(readiness.model_dump(), status_code=200 if readiness.ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> Response:
    """Request counts and latencies in Prometheus' text format."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    registry = api_state(request).extras["metrics"].registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
