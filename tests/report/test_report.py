"""The HTML report, read back with the stdlib's HTML and XML parsers.

Reports are rendered from real analyses: the CDNOW sample with BG/NBD, the demo shop's
messy Chinese export, a shop where nobody bought twice, and CDNOW with hostile customer
ids, file name and grade names.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import patron
from patron.i18n import _, catalogue, set_language
from patron.report import render_report
from patron.value.analyze import analyze

SECTIONS = (
    "kpis",
    "grades",
    "stages",
    "distribution",
    "rfm",
    "forecast",
    "model",
    "top",
    "at_risk",
    "ingest",
    "notes",
)
REPORT_SRC = Path(__file__).parents[2] / "src" / "patron" / "report"
STAGES = ("new", "growing", "mature", "at_risk", "churned", "reactivated")
HOSTILE_ID = "<script>alert('id')</script>"


class Page(HTMLParser):
    """The parts of a report the tests look at."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.raw = text
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.headings: dict[str, list[str]] = {"h1": [], "h2": [], "h3": []}
        self.kpis: dict[str, str] = {}
        self.sections: dict[str, str] = {}  # section id -> its text
        self.tables: dict[str, list[list[list[str]]]] = {}  # section id -> tables -> rows
        self.style = ""
        self.title = ""
        self._stack: list[str] = []
        self._section: str | None = None
        self._kpi: str | None = None
        self._kpi_class: str | None = None
        self._cell: list[str] | None = None
        self._heading: str | None = None
        self._text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "section":
            self._section = a.get("id")
            self.sections[self._section] = ""
            self.tables[self._section] = []
        if tag == "table" and self._section:
            self.tables[self._section].append([])
        if tag == "tr" and self._section:
            self.tables[self._section][-1].append([])
        if tag in ("td", "th"):
            self._cell = []
        if tag in self.headings:
            self._heading, self._text = tag, []
        if "data-kpi" in a:
            self._kpi = a["data-kpi"]
        if tag == "div" and self._kpi and a.get("class") == "value":
            self._kpi_class, self._text = "value", []
        self._stack.append(tag)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._section:
            self.tables[self._section][-1][-1].append("".join(self._cell).strip())
            self._cell = None
        if tag == self._heading:
            self.headings[tag].append("".join(self._text).strip())
            self._heading = None
        if tag == "div" and self._kpi_class:
            self.kpis[self._kpi] = "".join(self._text).strip()
            self._kpi = self._kpi_class = None
        if tag == "section":
            self._section = None
        if self._stack:
            self._stack.pop()

    def handle_data(self, data):
        top = self._stack[-1] if self._stack else ""
        if top == "style":
            self.style += data
        if top == "title" and "svg" not in self._stack:
            self.title += data
        if self._cell is not None:
            self._cell.append(data)
        if self._heading or self._kpi_class:
            self._text.append(data)
        if self._section and top not in ("title", "style"):
            self.sections[self._section] += data

    def svgs(self, section: str | None = None) -> list[str]:
        text = self.raw
        if section is not None:
            text = re.search(rf'<section id="{section}">.*?</section>', text, re.S).group(0)
        return re.findall(r"<svg\b.*?</svg>", text, flags=re.S)


def _number(text: str) -> float:
    return float(text.replace(",", "").replace("%", ""))


@pytest.fixture(scope="module")
def cdnow():
    return analyze(patron.datasets.cdnow(sample=True), as_of="1997-09-30", model="bgnbd")


def _render(analysis, lang: str) -> str:
    set_language(lang)
    try:
        return render_report(analysis)
    finally:
        set_language(None)


@pytest.fixture(scope="module", params=["en", "zh-CN"])
def report(request, cdnow):
    return request.param, Page(_render(cdnow, request.param))


def test_the_report_refers_to_nothing_outside_the_file(report):
    _lang, page = report
    for tag, attrs in page.tags:
        for name in ("src", "href", "action", "data", "poster"):
            value = attrs.get(name) or ""
            assert not re.match(r"\s*(https?:)?//", value, re.I), (tag, name, value)
        assert tag not in ("script", "link", "img", "iframe", "object", "embed"), tag
        assert "url(" not in (attrs.get("style") or "")
    assert "url(" not in page.style and "@import" not in page.style
    assert not re.search(r"https?://", page.raw, re.I)


def test_headings_and_language(report):
    lang, page = report
    assert ("html", {"lang": lang}) in page.tags
    assert page.headings["h1"] == [_("report.html.title", lang=lang)]
    assert page.headings["h2"] == [_(f"report.html.section.{s}", lang=lang) for s in SECTIONS]
    assert page.title.startswith(_("report.html.title", lang=lang))
    assert _("report.html.fit.repeat_heading", lang=lang) in page.headings["h3"]
    assert _("report.html.fit.parameters", lang=lang) in page.headings["h3"]
    # the two languages really differ
    assert _("report.html.section.kpis", lang="zh-CN") != _("report.html.section.kpis", lang="en")


def test_kpi_cards_show_the_analysis_figures(report, cdnow):
    _lang, page = report
    k = cdnow.kpis
    assert _number(page.kpis["customers"]) == k["customers"] == 2357
    assert page.kpis["customers"] == "2,357"
    assert _number(page.kpis["revenue"]) == round(k["revenue"], 2)
    assert _number(page.kpis["customer_equity"]) == round(k["customer_equity"], 2)
    for key in ("active_share", "repeat_rate", "top20_revenue_share"):
        assert page.kpis[key].endswith("%")
        assert _number(page.kpis[key]) == pytest.approx(100 * k[key], abs=0.05), key


def test_top_customers_are_in_order_of_predicted_value(report, cdnow):
    lang, page = report
    rows = page.tables["top"][0]
    header, body = rows[0], rows[1:]
    assert len(body) == 20
    c = cdnow.customers
    best = int(np.argmax(c["predicted_clv"].to_numpy()))
    assert body[0][1] == c["customer_id"][best].as_py()
    clv = [_number(r[header.index(_("report.html.col.clv", lang=lang))]) for r in body]
    assert clv == sorted(clv, reverse=True)
    assert clv[0] == round(float(c["predicted_clv"][best].as_py()), 2)


def test_labels_follow_the_report_language_not_the_analysis_language(cdnow):
    # cdnow was analysed in whatever language was in use; its *_label columns are frozen
    for lang in ("en", "zh-CN"):
        page = Page(_render(cdnow, lang))
        header, *body = page.tables["top"][0]
        stages = {_(f"value.stage.{s}", lang=lang) for s in STAGES}
        column = header.index(_("report.html.col.stage", lang=lang))
        assert {row[column] for row in body} <= stages
        grade = header.index(_("report.html.col.grade", lang=lang))
        assert body[0][grade] == _("value.grade.gold", lang=lang)


def test_every_chart_is_well_formed_svg(report):
    _lang, page = report
    svgs = page.svgs()
    # grades, stages, histogram, Pareto, RFM, forecast x2, repeat purchases
    assert len(svgs) == 8
    for svg in svgs:
        root = ET.fromstring(svg)
        assert root.tag == "svg"
        assert root.get("viewBox")
        assert root.find("title") is not None and root.find("title").text
        assert root.findall(".//text"), "axis labels"
        assert root.findall(".//rect") or root.findall(".//polyline")


def test_rfm_cells_count_every_customer(report, cdnow):
    _lang, page = report
    rfm = [s for s in page.svgs() if "<polyline" not in s and 'font-weight="600"' in s]
    assert len(rfm) == 1
    counts = [
        _number(t.text) for t in ET.fromstring(rfm[0]).iter("text") if t.get("font-weight") == "600"
    ]
    assert len(counts) == 25
    assert sum(counts) == cdnow.customers.num_rows


def test_forecast_table_matches_the_forecast(report, cdnow):
    _lang, page = report
    rows = page.tables["forecast"][0][1:]
    assert len(rows) == len(cdnow.forecast) + 1  # and the total
    for row, f in zip(rows, cdnow.forecast, strict=False):
        assert row[0] == f["start"]
        assert _number(row[3]) == round(f["revenue"], 2)
        low, high = (_number(v) for v in row[4].split(" – "))
        assert low == round(f["revenue_low"], 2) and high == round(f["revenue_high"], 2)
    total = sum(f["revenue"] for f in cdnow.forecast)
    assert _number(rows[-1][3]) == round(total, 2)


def test_repeat_histogram_compares_actual_counts_with_the_model(cdnow):
    from patron.report.model_fit import repeat_histogram
    from patron.report.sections import Formats

    fit = repeat_histogram(cdnow, Formats("en"))
    actual = [_number(r["actual"]) for r in fit["rows"]]
    expected = [_number(r["expected"]) for r in fit["rows"]]
    x = cdnow.customers["frequency"].to_numpy()
    assert actual[:2] == [(x == 0).sum(), (x == 1).sum()]
    assert sum(actual) == len(x) == 2357
    assert sum(expected) == pytest.approx(len(x), abs=1)
    # BG/NBD fits CDNOW's repeat-purchase histogram closely (FHL 2005, Figure 4)
    assert expected[0] == pytest.approx(actual[0], rel=0.03)
    assert expected[1] == pytest.approx(actual[1], rel=0.1)


def test_user_strings_are_escaped(tmp_path):
    table = patron.datasets.cdnow(sample=True).to_arrow().select(["customer_id", "ts", "amount"])
    ids = table["customer_id"].to_pylist()
    top = "0509"  # CDNOW sample's most valuable customer at 1997-09-30
    table = table.set_column(
        table.column_names.index("customer_id"),
        "customer_id",
        pa.array([HOSTILE_ID if i == top else i for i in ids]),
    )
    path = tmp_path / "orders <marquee>&amp;<script>.csv"
    pacsv.write_csv(table, path)
    config = tmp_path / "patron.toml"
    config.write_text(
        '[grades]\nnames = ["<blink>VIP</blink>", "R&D \\"A\\"", "普通"]\ncutoffs = [0.1, 0.3]\n',
        encoding="utf-8",
    )
    analysis = analyze(path, as_of="1997-09-30", model="bgnbd", config=config)
    html = _render(analysis, "en")
    assert "<script" not in html.lower()
    assert "<marquee" not in html and "<blink" not in html
    assert "&lt;script&gt;alert(&#39;id&#39;)&lt;/script&gt;" in html
    page = Page(html)
    assert page.tables["top"][0][1][1] == HOSTILE_ID  # shown as text, first
    assert page.title.endswith(path.name)
    grade_cells = [row[0] for row in page.tables["grades"][0][1:]]
    assert grade_cells == ["<blink>VIP</blink>", 'R&D "A"', "普通"]
    for svg in page.svgs():
        ET.fromstring(svg)  # still well-formed with the grade names inside


def test_nobody_bought_twice_renders_with_the_no_model_note():
    days = [dt.datetime(2024, 1, 1) + dt.timedelta(days=3 * i) for i in range(40)]
    table = pa.table(
        {
            "customer_id": [f"c{i:03d}" for i in range(40)],
            "ts": days,
            "amount": [10.0 + 7 * i for i in range(40)],
        }
    )
    for lang in ("en", "zh-CN"):
        set_language(lang)
        try:
            analysis = analyze(table)
            page = Page(render_report(analysis))
        finally:
            set_language(None)
        assert analysis.purchase_model is None
        note = analysis.notes[0]
        assert page.headings["h2"] == [_(f"report.html.section.{s}", lang=lang) for s in SECTIONS]
        no_model = _("report.html.no_model", lang=lang)
        for section in ("forecast", "model"):
            assert no_model in page.sections[section]
        assert note in page.sections["notes"]
        # ranked by spend, no predicted value: the biggest spender comes first
        header, first, *_rest = page.tables["top"][0]
        assert first[1] == "c039"
        assert _("report.html.col.clv", lang=lang) not in header
        assert page.kpis["customer_equity"] == "—"
        for svg in page.svgs():
            ET.fromstring(svg)
        assert page.svgs("forecast") == []
        assert _("report.html.fit.repeat_heading", lang=lang) not in page.headings["h3"]
        assert len(page.svgs()) == 5  # nothing from the model, nor from a backtest of none


def test_demo_shop_report_accounts_for_every_rejected_row(tmp_path):
    path = patron.datasets.demo_shop(tmp_path / "订单.csv", customers=400)
    analysis = analyze(path)
    page = Page(_render(analysis, "zh-CN"))
    report = analysis.transactions.report
    assert report.rejected > 0
    items, columns, reasons = page.tables["ingest"]
    assert sum(_number(count) for _reason, count in reasons[1:]) == report.rejected
    shown = {row[0] for row in reasons[1:]}
    assert shown == {_(f"reason.{code}", lang="zh-CN") for code in report.rejected_by_reason}
    used = {row[1] for row in columns[1:]}
    assert set(report.columns.values()) == used
    assert [_number(row[1]) for row in items[1:2]] == [report.rows_read]
    assert page.title.endswith("订单.csv")


def test_backtest_section_when_the_model_was_chosen_on_a_holdout():
    pytest.importorskip("patron.value.backtest")
    from patron.report.model_fit import model_title

    analysis = analyze(patron.datasets.cdnow(sample=True), as_of="1998-06-30")
    assert analysis.backtest is not None
    page = Page(_render(analysis, "en"))
    assert _("report.html.fit.backtest_heading", lang="en") in page.headings["h3"]
    metrics = page.tables["model"][0]
    assert metrics[0][0] == _("report.html.fit.model", lang="en")
    assert len(metrics) == 1 + len(analysis.backtest.metrics)
    chosen = [row for row in metrics[1:] if row[0].endswith("✓")]
    # the mark is on the model whose predictions the report shows
    assert [row[0] for row in chosen] == [f"{model_title(analysis.model_name)} ✓"]
    predicted = analysis.backtest.metrics[analysis.model_name]["predicted_total"]
    assert _number(chosen[0][1]) == round(predicted, 1)
    assert f"{_('report.html.meta.model', lang='en')}: {model_title(analysis.model_name)}" in (
        page.raw.replace("<b>", "").replace("</b>", "")
    )
    assert len(page.svgs()) == 10  # and the tracking plot and the conditional expectations
    for svg in page.svgs():
        ET.fromstring(svg)


def test_written_next_to_the_other_outputs(tmp_path, cdnow):
    paths = cdnow.write(tmp_path)
    text = paths["report"].read_text("utf-8")
    assert text.startswith("<!DOCTYPE html>") and "</html>" in text


def test_every_message_the_report_names_exists_in_both_languages():
    used = set()
    for path in [*REPORT_SRC.rglob("*.py"), *REPORT_SRC.rglob("*.j2")]:
        text = path.read_text("utf-8")
        keys = re.findall(r"""\bt\(\s*["']([a-z_.]*[a-z_])["']""", text)  # not prefixes
        used |= {f"report.html.{k}" for k in keys}
        used |= {f"report.{k}" for k in re.findall(r"""_report\(\s*["']([a-z_]+)["']""", text)}
    assert len(used) > 50
    for lang in ("en", "zh-CN"):
        assert used <= set(catalogue(lang)), used - set(catalogue(lang))


def test_pareto_curve_and_top_rows_match_a_full_sort():
    from patron.report.sections import _pareto, _top

    rng = np.random.default_rng(1)
    for n in (2, 5, 99, 1000, 12345):
        v = rng.gamma(0.5, 10, n)
        v[1::7] = 0
        x, y = _pareto(v)
        s = np.sort(v)[::-1]
        cum = np.concatenate([[0], np.cumsum(s) / s.sum()])
        np.testing.assert_allclose(y, np.interp(x * n, np.arange(n + 1), cum))
        ties = np.round(v, 0)  # many equal values: table order decides
        assert _top(ties, 20).tolist() == np.argsort(-ties, kind="stable")[:20].tolist()
