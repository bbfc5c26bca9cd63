"""GET /v1/audit/trail/{id}: the audit trail of a session, payment or refund."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from api.auth import require
from api.keys import ApiKey, Role
from api.params import TrailId
from api.problems import Problem, problem_responses
from api.schemas import Trail, TrailEntry
from api.state import api_state
from audit.scan import LedgerUnavailable
from audit.trail import UnknownTrailId, sharded_trail

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get(
    "/trail/{trail_id:id}",
    response_model=Trail,
    responses=problem_responses(400, 401, 403, 404, 422, 503),
)
def trail(
    request: Request,
    trail_id: TrailId,
    key: Annotated[ApiKey, Depends(require(Role.auditor))],
) -> Trail:
    """Every ledger event of the session, payment or refund and of its relatives, in ledger
    order (as `evledger audit trail`). Reads the ledger itself, not a read model."""
    scans = api_state(request).root.ledger_scans()
    try:
        _, found = sharded_trail(scans, trail_id)
    except UnknownTrailId:
        raise Problem(404, f"no session, payment or refund {trail_id!r} in the ledger") from None
    except LedgerUnavailable as error:
        raise Problem(503, f"the ledger cannot be read: {error}") from None
    return Trail(
        id=trail_id,
        kinds=found.kinds,
        entries=[TrailEntry(**entry.row()) for entry in found.entries],
    )
