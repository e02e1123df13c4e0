"""The self-contained HTML report of ``patron analyze``.

:func:`render_report` turns an :class:`~patron.value.analyze.Analysis` into one HTML page,
in the language in use (:func:`patron.i18n.get_language`): KPI cards, grades and what each
is worth, lifecycle stages, the spread of value, an RFM heatmap, the 12-month forecast,
how well the models fit, the most valuable customers and those at risk, and what was read.
Charts are inline SVG drawn by :mod:`patron.report.charts`; nothing is fetched from
outside the file.
"""

from patron.report.page import render_report

__all__ = ["render_report"]
