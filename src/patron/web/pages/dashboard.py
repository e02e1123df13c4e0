"""The dashboard: the latest scoring run at a glance, and what changed since the one before."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from patron.crm.services import scoring, tasks
from patron.i18n import _
from patron.web.deps import SessionDep
from patron.web.pages.charts import shares_chart
from patron.web.pages.render import Viewer, render
from patron.web.pages.routing import PageRoute, viewer

__all__ = ["router", "KPIS", "finished_runs"]

router = APIRouter(route_class=PageRoute)

KPIS = (
    ("customers", "count"),
    ("active_share", "percent"),
    ("repeat_rate", "percent"),
    ("revenue", "money"),
    ("customer_equity", "money"),
    ("top20_revenue_share", "percent"),
)


def finished_runs(session, n: int = 2) -> list:
    """The ``n`` newest runs that finished (a running or failed run has no scores to show)."""
    runs, _total = scoring.list_runs(session, limit=50)
    return [run for run in runs if run.status == "done"][:n]


@router.get("/", name="dashboard")
def dashboard(
    request: Request,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("scoring.read"))],
) -> Response:
    """KPI cards, grade and stage charts, and the grade migration since the previous run."""
    from patron.web.pages.feedback import dashboard_panel
    from patron.web.pages.loyalty import liability_panel

    runs = finished_runs(session, 2)
    latest = runs[0] if runs else None
    context: dict = {
        "latest": latest,
        "previous": runs[1] if len(runs) > 1 else None,
        "migration": None,
        "tasks_summary": tasks.dashboard_tasks(session, v.user),
        "nps": dashboard_panel(session, v),
        "liability": liability_panel(session, v),
    }
    if latest is not None:
        grades = scoring.distribution(session, latest.id, by="grade")
        stages = scoring.distribution(session, latest.id, by="lifecycle_stage")
        context["kpis"] = [
            (key, kind, latest.kpis.get(key)) for key, kind in KPIS if key in latest.kpis
        ]
        context["grade_chart"] = shares_chart(
            grades, "grade", v.lang, _("pages.dashboard.grades", lang=v.lang)
        )
        context["stage_chart"] = shares_chart(
            stages, "stage", v.lang, _("pages.dashboard.stages", lang=v.lang)
        )
        context["grades"], context["stages"] = grades, stages
        if context["previous"] is not None:
            context["migration"] = scoring.migration(
                session, context["previous"].id, latest.id, by="grade"
            )
    return render(request, "dashboard.html.j2", v, **context)
