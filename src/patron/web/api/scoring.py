"""Scoring runs: run the analysis on the database's orders, list runs, compare two runs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query

from patron.crm.services import scoring
from patron.crm.tables import User
from patron.web.deps import SessionDep, require
from patron.web.schemas import (
    MAX_ID,
    MigrationBy,
    MigrationOut,
    Page,
    ScoringRunCreate,
    ScoringRunOut,
)

__all__ = ["router"]

router = APIRouter(tags=["scoring"])

Reader = Annotated[User, Depends(require("scoring.read"))]
RunId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.post("/scoring-runs", response_model=ScoringRunOut, status_code=201)
def run(
    session: SessionDep,
    user: Annotated[User, Depends(require("scoring.run"))],
    body: Annotated[ScoringRunCreate | None, Body()] = None,
) -> ScoringRunOut:
    """Score every customer now and keep the snapshot (managers).

    The run happens within the request; a run that fails is stored with status "failed"
    and its message.
    """
    options = body or ScoringRunCreate()
    result = scoring.run_scoring(
        session, actor=user, as_of=options.as_of, model=options.model, horizon=options.horizon
    )
    return ScoringRunOut.model_validate(result)


@router.get("/scoring-runs", response_model=Page[ScoringRunOut])
def list_runs(
    session: SessionDep,
    user: Reader,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> Page[ScoringRunOut]:
    """The scoring runs, newest first."""
    runs, total = scoring.list_runs(session, limit=limit, offset=offset)
    return Page[ScoringRunOut](items=[ScoringRunOut.model_validate(r) for r in runs], total=total)


@router.get("/scoring-runs/{run_id}", response_model=ScoringRunOut)
def get_run(session: SessionDep, user: Reader, run_id: RunId) -> ScoringRunOut:
    """One run with its KPIs, model parameters and backtest."""
    return ScoringRunOut.model_validate(scoring.get_run(session, run_id))


@router.get("/scoring-runs/{run_id}/migration", response_model=MigrationOut)
def migration(
    session: SessionDep,
    user: Reader,
    run_id: RunId,
    from_run: Annotated[int, Query(alias="from", ge=1, le=MAX_ID, description="earlier run id")],
    by: MigrationBy = "grade",
) -> dict[str, Any]:
    """How customers moved between grades (or stages) from run ``from`` to this run."""
    return scoring.migration(session, from_run, run_id, by=by)
