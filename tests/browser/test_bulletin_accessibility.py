"""The bulletin as a reader gets it, in a real browser: headless Chromium (Debian's package)
renders each page, takes a screenshot, and runs axe-core (vendored, tests/assets/axe-core) in
the page. No serious or critical accessibility violation is allowed. The PDFs the build
printed with the same browser are checked too (tagged, A4, the briefings included).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from reviews.learning.browser import HeadlessChromium
from tests.browser.standalone import axe_violations as _axe
from tests.bulletin_data import JUNE, NHS_NUMBER, build, built_bulletins


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder, report, _engine, _cfg = built_bulletins(tmp_path_factory.mktemp("bulletins"), build, JUNE)
    return folder, report


@pytest.fixture(scope="module")
def browser():
    with HeadlessChromium() as b:
        yield b


def _pages(folder: Path) -> dict[str, Path]:
    return {
        "region": next(folder.glob("merseyside-learning-bulletin-*-v1.html")),
        "knowsley": next(folder.glob("knowsley-learning-bulletin-*-v1.html")),
        "briefing": next((folder / "briefings").glob("*.html")),
    }


@pytest.mark.parametrize("which", ["region", "knowsley", "briefing"])
def test_page_renders_and_has_no_serious_accessibility_violations(built, browser, which, tmp_path):
    folder, _ = built
    page = browser.new_page(width=760, height=1000)
    try:
        page.load_file(_pages(folder)[which])
        png = page.screenshot()
        (tmp_path / f"{which}.png").write_bytes(png)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
        # The page is laid out as intended: one column, no wider than the email width.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 760, f"{which} is {width}px wide: a table overflows the column"
        images = page.evaluate("Array.from(document.images).map(i => [i.naturalWidth, i.alt.length])")
        assert all(w > 0 and alt > 40 for w, alt in images), images  # every chart loaded, every alt text says something
        violations = _axe(page)
    finally:
        page.close()
    bad = [(v["id"], v["impact"], v["help"], len(v["nodes"])) for v in violations if v["impact"] in ("serious", "critical")]
    assert not [v["id"] for v in violations], f"{which}: axe found (minor or moderate): {violations}"
    assert not bad, f"{which}: {bad}"


def test_region_bulletin_has_charts_and_headings_in_order(built, browser):
    folder, _ = built
    page = browser.new_page()
    try:
        page.load_file(_pages(folder)["region"])
        levels = page.evaluate("Array.from(document.querySelectorAll('h1,h2,h3')).map(h => +h.tagName[1])")
        charts = page.evaluate("document.images.length")
        tables = page.evaluate("Array.from(document.querySelectorAll('table:not([role=presentation])'))"
                               ".map(t => !!t.caption && t.querySelectorAll('th[scope]').length > 0)")
    finally:
        page.close()
    assert levels[0] == 1 and all(b - a <= 1 for a, b in zip(levels, levels[1:]))
    assert charts >= 2
    assert tables and all(tables)


def test_pdfs_are_printed_tagged_and_carry_the_briefings(built):
    folder, report = built
    assert report.pdfs_printed == 6
    region = next(folder.glob("merseyside-learning-bulletin-*-v1.pdf")).read_bytes()
    partner = next(folder.glob("sefton-learning-bulletin-*-v1.pdf")).read_bytes()
    for pdf in (region, partner):
        assert pdf.startswith(b"%PDF-") and b"/StructTreeRoot" in pdf  # tagged for screen readers
        assert b"/MediaBox [0 0 595.91998 841.91998]" in pdf or b"595.9" in pdf  # A4
    pages = lambda pdf: len(re.findall(rb"/Type\s*/Page\b", pdf))  # noqa: E731
    assert pages(region) > pages(partner)  # Knowsley's published review's briefing is in the regional PDF
    assert NHS_NUMBER.encode() not in region
