"""``patron jobs run``: the daily job -- points expiry, birthday bonuses, the tier review.

Run it once a day (cron, a systemd timer). It is safe to run twice: each step records
that it finished for its period (the day for expiry, the month for birthdays, the review
period for tiers) and a second run skips it; a run that stopped half-way picks up where
it was, because every step is idempotent account by account. Each batch of accounts is
its own transaction, so the job never holds a million locks, and the pages and the API
keep working while it runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from patron.cli_options import Lang
from patron.crm.commands.db import DatabaseUrl
from patron.i18n import _, set_language

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["register", "run_jobs"]


def run_jobs(engine: Engine, *, now: dt.datetime | None = None) -> dict[str, dict[str, Any]]:
    """Run every step for ``now``; per step its counts, or ``{"skipped": True}``.

    Each step's run for its period is recorded in ``loyalty_job_runs`` once it finished.
    """
    from patron.crm.db import session_scope
    from patron.crm.services import idempotency
    from patron.crm.services.loyalty import get_program, jobs
    from patron.crm.tables.base import utcnow

    now = now or utcnow()
    steps: dict[str, Callable[..., jobs.Batch]] = {
        "expire": jobs.expire_batch,
        "birthday": jobs.birthday_batch,
        "tier_review": jobs.review_batch,
    }
    results: dict[str, dict[str, Any]] = {}
    for job, batch in steps.items():
        with session_scope(engine) as session:
            period = jobs.job_period(get_program(session), job, now)
            run = jobs.start_job(session, job, period)
        if run is None:
            results[job] = {"period": period, "skipped": True}
            continue
        totals: dict[str, int] = {}
        if job == "tier_review":
            with session_scope(engine) as session:
                totals["enrolled"] = jobs.enroll_qualified(session, now=now)
        after: int | None = 0
        while after is not None:
            with session_scope(engine) as session:
                done = batch(session, now=now, after_id=after)
            for name, count in done.counts.items():
                totals[name] = totals.get(name, 0) + count
            after = done.last_id
        with session_scope(engine) as session:
            jobs.finish_job(session, job, period, totals)
        results[job] = {"period": period, "skipped": False, **totals}
    with session_scope(engine) as session:
        results["idempotency_keys"] = {"purged": idempotency.purge(session, now=now)}
    return results


def register(app: typer.Typer) -> None:
    """Add ``patron jobs`` to ``app``."""
    jobs_app = typer.Typer(help=_("jobs.help"), no_args_is_help=True)
    app.add_typer(jobs_app, name="jobs")
    out = Console()

    @jobs_app.command("run", help=_("jobs.run_help"))
    def run(
        as_of: Annotated[str | None, typer.Option("--as-of", help=_("jobs.opt_as_of"))] = None,
        database_url: DatabaseUrl = None,
        lang: Lang = None,
    ) -> None:
        if lang:
            set_language(lang)
        from patron.crm.db import make_engine
        from patron.crm.migrate import check_schema

        now = _as_of(as_of)
        engine = make_engine(database_url)
        check_schema(engine)
        results = run_jobs(engine, now=now)
        for job in ("expire", "birthday", "tier_review"):
            result = results[job]
            if result["skipped"]:
                out.print(_("jobs.skipped", step=_(f"jobs.step.{job}"), period=result["period"]))
                continue
            counts = {k: v for k, v in result.items() if k not in ("period", "skipped")}
            out.print(
                _(
                    f"jobs.done.{job}",
                    period=result["period"],
                    **{k: f"{v:,}" for k, v in counts.items()},
                )
            )
        out.print(_("jobs.purged", n=f"{results['idempotency_keys']['purged']:,}"))


def _as_of(value: str | None) -> dt.datetime | None:
    """``--as-of``: an ISO date (its start in UTC) or an ISO time with a zone."""
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        from patron.crm.services.errors import Invalid

        raise Invalid(_("jobs.bad_as_of", value=value), field="as_of") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC)
