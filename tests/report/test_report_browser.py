"""The report in a real browser: Debian's Chromium driven by Playwright.

Without ``/usr/bin/chromium`` (or Playwright) these tests are skipped, unless
``PATRON_REQUIRE_BROWSER=1`` (CI), which makes them fail instead -- a missing browser must
never pass silently.  Never run ``playwright install``: it downloads a browser build.
Screenshots go to ``tests/report/output/`` for a person to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import patron
from patron.i18n import _, set_language
from patron.report import render_report
from patron.value.analyze import analyze

OUTPUT = Path(__file__).parent / "output"
CJK_FONTS = ("CJK", "Source Han", "Microsoft YaHei", "PingFang", "WenQuanYi", "Hiragino")


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """The CDNOW report written in both languages: {lang: path}."""
    analysis = analyze(patron.datasets.cdnow(sample=True), as_of="1997-09-30", model="bgnbd")
    folder = tmp_path_factory.mktemp("reports")
    paths = {}
    for lang in ("en", "zh-CN"):
        set_language(lang)
        try:
            paths[lang] = folder / f"report_{lang}.html"
            paths[lang].write_text(render_report(analysis), encoding="utf-8")
        finally:
            set_language(None)
    return paths


def _open(browser, path: Path):
    """A page with the report loaded, and the requests it made and those that failed."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    requests, failed = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("requestfailed", lambda r: failed.append((r.url, r.failure)))
    page.goto(path.as_uri(), wait_until="load")
    return page, requests, failed


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_report_loads_nothing_from_outside_and_renders(browser, reports, lang):
    page, requests, failed = _open(browser, reports[lang])
    try:
        assert failed == []
        assert requests == [reports[lang].as_uri()]  # the file itself, nothing else
        assert page.title() == f"{_('report.html.title', lang=lang)} · <pyarrow Table>"
        heading = page.locator("h2", has_text=_("report.html.section.forecast", lang=lang))
        assert heading.is_visible()
        charts = page.locator("svg.chart")
        assert charts.count() == 8
        for i in range(charts.count()):
            box = charts.nth(i).bounding_box()
            assert box["width"] > 250 and box["height"] > 100, i
        OUTPUT.mkdir(exist_ok=True)
        shot = OUTPUT / f"report_{lang}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 50_000
    finally:
        page.close()


@pytest.mark.browser
def test_chinese_text_is_drawn_with_a_cjk_font(browser, reports):
    page, _requests, _failed = _open(browser, reports["zh-CN"])
    try:
        title = _("report.html.title", lang="zh-CN")
        assert page.locator("h1").inner_text() == title
        assert page.locator("h2", has_text=_("report.html.section.kpis", lang="zh-CN")).count()
        # Ask the renderer which fonts drew the heading's glyphs: without a CJK font
        # Chromium falls back to a font without Chinese and draws empty boxes.
        cdp = page.context.new_cdp_session(page)
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "h1"})["nodeId"]
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
        assert fonts, "no font reported"
        assert sum(f["glyphCount"] for f in fonts) == len(title)
        for font in fonts:
            assert any(name in font["familyName"] for name in CJK_FONTS), fonts
        # And a chart's Chinese axis title is as wide as CJK glyphs are (a full em each).
        label = _("report.html.axis.customers", lang="zh-CN")
        width = page.evaluate(
            """(label) => {
                const t = [...document.querySelectorAll('svg.chart text')]
                    .find(e => e.textContent === label);
                return t.getComputedTextLength() / parseFloat(t.getAttribute('font-size'));
            }""",
            label,
        )
        assert width == pytest.approx(len(label), rel=0.1)
    finally:
        page.close()


@pytest.mark.browser
def test_print_layout_hides_the_navigation(browser, reports):
    page, _requests, _failed = _open(browser, reports["en"])
    try:
        assert page.locator("nav.toc").is_visible()
        page.emulate_media(media="print")
        assert not page.locator("nav.toc").is_visible()
        pdf = page.pdf(format="A4")
        assert pdf.startswith(b"%PDF") and len(pdf) > 50_000
    finally:
        page.close()
