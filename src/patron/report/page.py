"""The report page: sections rendered through one Jinja2 template, CSS inlined.

The template environment autoescapes everything, so customer ids, file names and the
business's grade names cannot inject markup; the only strings marked safe are the SVG
charts, which escape their own text (:mod:`patron.report.charts`).
"""

from __future__ import annotations

from functools import cache
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from patron.i18n import _, get_language
from patron.report import model_fit, sections
from patron.report.charts import Svg
from patron.report.sections import Formats, t

if TYPE_CHECKING:
    import jinja2

    from patron.value.analyze import Analysis

__all__ = ["render_report"]


@cache
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("patron.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("patron")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return ""


def _display_name(source: str) -> str:
    """A file's name without its folders (they may name the user); other sources as given."""
    return PurePath(source).name if ("/" in source or "\\" in source) else source


def context(analysis: Analysis) -> dict[str, Any]:
    """Everything the template shows, formatted for the language in use."""
    from markupsafe import Markup

    lang = get_language()
    f = Formats(lang)
    head = sections.header(analysis, f)
    head["source"] = _display_name(head["source"])

    def safe(value: Any) -> Any:
        """Mark the charts of a section safe (and nothing else), recursively."""
        if isinstance(value, Svg):
            return Markup(value)
        if isinstance(value, dict):
            return {k: safe(v) for k, v in value.items()}
        if isinstance(value, list):
            return [safe(v) for v in value]
        return value

    return {
        "lang": lang,
        "t": t,
        "_report": lambda key: _(f"report.{key}"),
        "head": head,
        "version": _version(),
        "has_model": analysis.purchase_model is not None,
        "kpis": sections.kpis(analysis, f),
        "grades": safe(sections.grades(analysis, f)),
        "stages": safe(sections.stages(analysis, f)),
        "distribution": safe(sections.distribution(analysis, f)),
        "rfm": safe(sections.rfm(analysis, f)),
        "forecast": safe(sections.forecast(analysis, f)),
        "repeat": safe(model_fit.repeat_histogram(analysis, f)),
        "parameters": model_fit.parameters(analysis, f),
        "backtest": safe(model_fit.backtest(analysis, f)),
        "customers": sections.customer_tables(analysis, f),
        "ingest": sections.ingest(analysis, f),
        "notes": list(analysis.notes),
    }


def render_report(analysis: Analysis) -> str:
    """The analysis as one self-contained HTML page, in the language in use.

    Parameters
    ----------
    analysis
        What :func:`patron.value.analyze.analyze` returned.

    Returns
    -------
    str
        A complete HTML document: inline CSS and SVG charts, no script and no reference
        to anything outside the file, so it can be mailed, archived and printed as is.
    """
    return _environment().get_template("report.html.j2").render(context(analysis))
