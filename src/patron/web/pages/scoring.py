"""Scoring runs: the list, the button that starts one (managers), and the migration matrix.

A run's page compares it with an earlier run: how many customers moved from each grade
(or stage) to each other, and what the movers are now predicted to be worth.
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from patron.crm.services import scoring
from patron.web.deps import SessionDep, csrf_protect
from patron.web.pages.charts import forecast_chart
from patron.web.pages.customers import page_number
from patron.web.pages.dashboard import KPIS
from patron.web.pages.render import Viewer, render
from patron.web.pages.routing import PageRoute, redirect, viewer

__all__ = ["router"]

router = APIRouter(route_class=PageRoute)

PAGE_SIZE = 20
MIGRATION_BY = {"grade": "grade", "stage": "lifecycle_stage"}


@router.get("/scoring", name="scoring_runs")
def scoring_runs(
    request: Request,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("scoring.read"))],
    page: str = "1",
) -> Response:
    """Every scoring run, newest first, with the run button for those who may run one."""
    number = page_number(page)
    runs, total = scoring.list_runs(session, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
    return render(
        request,
        "scoring/list.html.j2",
        v,
        runs=runs,
        total=total,
        page=number,
        pages=max(math.ceil(total / PAGE_SIZE), 1),
    )


@router.post("/scoring", name="run_scoring", dependencies=[Depends(csrf_protect)])
def run_scoring(
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("scoring.run"))],
) -> Response:
    """Score every customer on the database's orders now; show the new run."""
    run = scoring.run_scoring(session, actor=v.user)
    return redirect(f"/scoring/{run.id}")


@router.get("/scoring/{run_id}", name="scoring_run")
def scoring_run(
    request: Request,
    run_id: int,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("scoring.read"))],
    compare: str = "",
    by: str = "grade",
) -> Response:
    """One run: its KPIs and model, and the migration from an earlier run to it."""
    run = scoring.get_run(session, run_id)
    runs, _total = scoring.list_runs(session, limit=100)
    others = [r for r in runs if r.id != run.id and r.status == "done"]
    earlier = [r for r in others if (r.started_at, r.id) < (run.started_at, run.id)]
    try:
        compare_id = int(compare) if compare else None
    except ValueError:
        compare_id = None
    if compare_id is None and earlier:
        compare_id = earlier[0].id
    by = by if by in MIGRATION_BY else "grade"
    migration = None
    if compare_id is not None and run.status == "done":
        migration = scoring.migration(session, compare_id, run.id, by=MIGRATION_BY[by])
    return render(
        request,
        "scoring/detail.html.j2",
        v,
        run=run,
        kpis=[(key, kind, run.kpis.get(key)) for key, kind in KPIS if key in (run.kpis or {})],
        others=others,
        compare_id=compare_id,
        by=by,
        migration=migration,
        params=run.params or {},
        backtest=run.backtest or {},
        forecast=forecast_chart((run.params or {}).get("forecast"), v.formats),
    )
