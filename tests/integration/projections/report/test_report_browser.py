"""The demo's HTML report in a real browser (Debian's headless Chromium, driven by
Playwright): no console errors, every chart drew its marks, the station choice works.
A full-page screenshot is kept in .artifacts/ for people to look at."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from projections.report import SECTION_NAMES
from tests.browser import chromium

REPO = Path(__file__).resolve().parents[4]
ARTIFACTS = REPO / ".artifacts"
# Sections drawn as a chart (the per-station days are on demand in the daily chart, and
# the trial balance is a table).
CHARTED = [s for s in SECTION_NAMES if s not in ("revenue_by_station_day", "trial_balance")]
# Marks Plotly draws: bars, line and marker points, heatmap images.
_MARKS = ".barlayer .point path, .scatterlayer .js-line, .scatterlayer .point, .hm image"


@pytest.fixture(scope="module")
def page(demo_dir: Path) -> Iterator[tuple[Any, list[str]]]:
    from playwright.sync_api import sync_playwright

    report = demo_dir / "report.html"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"]
        )
        # Offline: anything the page tried to fetch would fail and show up as an error.
        context = browser.new_context(viewport={"width": 1200, "height": 900}, offline=True)
        tab = context.new_page()
        errors: list[str] = []
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda error: errors.append(str(error)))
        tab.on("requestfailed", lambda request: errors.append(f"fetch {request.url}"))
        tab.goto(report.as_uri())
        tab.wait_for_function(
            f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {len(CHARTED)}"
        )
        yield tab, errors
        browser.close()


def test_every_chart_draws_its_marks_without_errors(page: tuple[Any, list[str]]) -> None:
    tab, errors = page
    marks = tab.evaluate(
        "(selector) => Object.fromEntries([...document.querySelectorAll('.chart')].map("
        "  c => [c.dataset.section, c.querySelectorAll(selector).length]))",
        _MARKS,
    )
    assert list(marks) == CHARTED
    assert all(count > 0 for count in marks.values()), marks
    headline = tab.inner_text("#headline")
    assert "EUR" in headline
    assert "BOOKS BALANCED\nyes" in headline  # (uppercase by its style)
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "report-demo.png"), full_page=True)
    assert errors == []


def test_revenue_per_station_on_demand(page: tuple[Any, list[str]]) -> None:
    tab, errors = page
    visible = "() => document.getElementById('chart-revenue_by_day')._fullLayout.title.text"
    assert tab.evaluate(visible).endswith("All stations")
    tab.click("#chart-revenue_by_day .updatemenu-header-group")
    tab.click("#chart-revenue_by_day .updatemenu-dropdown-button >> text=ST-002")
    tab.wait_for_function(
        "document.getElementById('chart-revenue_by_day')._fullLayout.title.text.endsWith('ST-002')"
    )
    shown = tab.evaluate(
        "() => document.getElementById('chart-revenue_by_day')._fullData"
        ".filter(t => t.visible === true).map(t => t.y.reduce((a, b) => a + b, 0))"
    )
    # The bars now are ST-002's gross per day alone: less than the fleet's.
    assert len(shown) == 2
    assert (
        0
        < shown[0]
        < sum(tab.evaluate("() => document.getElementById('chart-revenue_by_day').data[0].y"))
    )
    assert errors == []
