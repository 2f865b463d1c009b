"""Reading comfort at realistic volumes (issue 17, items 1 and 6), in headless Chromium and the PDF.

Five years of single-digit serious cases a year per partnership (tests.bulletin_data.build_realistic),
the quarter April to June 2026: the regional bulletin opens with learning (no table on its first
screen at 1280 px), fewer than a quarter of the figures it publishes are `c`, it fits a 390 px
phone, the HTML part of the email is under 100 KB (Gmail clips larger), its text lines are under
80 characters, axe-core finds nothing, and a 7-minute briefing prints on one A4 page.
Screenshots are kept under var/screenshots/.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from reviews.learning.browser import HeadlessChromium
from tests.bulletin_data import (NATIONAL_REVIEW, NO_FINDINGS_REVIEW, REALISTIC_QUARTER, build_realistic, built_bulletins,
                                 published_figures)

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return built_bulletins(tmp_path_factory.mktemp("realistic"), build_realistic, REALISTIC_QUARTER)


@pytest.fixture(scope="module")
def browser():
    with HeadlessChromium() as b:
        yield b


def _region(folder: Path) -> Path:
    return next(folder.glob("merseyside-learning-bulletin-*-v1.html"))


def test_first_screen_shows_learning_and_no_table(built, browser):
    folder, *_ = built
    page = browser.new_page(width=1280, height=800)
    try:
        page.load_file(_region(folder))
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / "bulletin-region-1280-first-screen.png").write_bytes(page.screenshot(full_page=False))
        height = page.evaluate("window.innerHeight")
        tables_above = page.evaluate(
            "Array.from(document.querySelectorAll('table:not([role=presentation])'))"
            ".filter(t => t.getBoundingClientRect().top < window.innerHeight).length")
        learning_top = page.evaluate(
            "Array.from(document.querySelectorAll('h2')).find(h => h.textContent.startsWith('What we learned'))"
            ".getBoundingClientRect().top")
        first_finding = page.evaluate("document.querySelector('h2 ~ h3 + ul li').getBoundingClientRect().top")
    finally:
        page.close()
    assert height == 800 and tables_above == 0
    assert learning_top < 400 and first_finding < height  # a finding is read before any count


def test_fewer_than_a_quarter_of_the_figures_are_c(built):
    folder, *_ = built
    figures = published_figures(_region(folder).read_text(encoding="utf-8"))
    assert len(figures) >= 10, figures
    assert figures.count("c") / len(figures) < 0.25, figures


def test_key_to_c_is_next_to_the_first_c(built):
    """On every page that shows a c (the partnerships' pages do at these volumes; the regional one
    may not), the key follows the first one in the same part."""
    folder, *_ = built
    checked = 0
    for path in sorted(folder.glob("*-learning-bulletin-*-v1.html")):
        html = path.read_text(encoding="utf-8")
        shown = [m.start() for m in re.finditer(r"<(?:td|strong)[^>]*>c</(?:td|strong)>", html)]
        if not shown:
            assert "<strong>Key:</strong>" not in html, path.name
            continue
        key = html.index("<strong>Key:</strong> c = a count from 1 to 5")
        assert shown[0] < key and not re.search(r"<h[23]", html[shown[0]:key]), path.name  # same part, right after
        checked += 1
    assert checked >= 3


def test_charts_say_on_screen_what_was_not_drawn(built):
    folder, *_ = built
    html = _region(folder).read_text(encoding="utf-8")
    visible = re.sub(r'alt="[^"]*"', "", html)
    assert "not drawn because their count is shown as c" in visible


@pytest.mark.parametrize("which", ["region", "knowsley", "briefing"])
def test_fits_a_phone_and_axe_finds_nothing(built, browser, which):
    from tests.browser.test_bulletin_accessibility import _axe

    folder, *_ = built
    path = {"region": _region(folder), "knowsley": next(folder.glob("knowsley-learning-bulletin-*-v1.html")),
            "briefing": next((folder / "briefings").glob("*.html"))}[which]
    page = browser.new_page(width=390, height=844)
    try:
        page.load_file(path)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / f"bulletin-{which}-390.png").write_bytes(page.screenshot())
        width = page.evaluate("document.documentElement.scrollWidth")
        violations = _axe(page)
    finally:
        page.close()
    assert width <= 390, f"{which} is {width}px wide at 390px: something scrolls sideways"
    assert not violations, [(v["id"], v["impact"], v["help"]) for v in violations]


def test_email_html_part_is_under_100_kb_and_text_lines_under_80(built):
    from reviews.core.mail import Message, build_mime

    folder, *_ = built
    for html_path in folder.glob("*-learning-bulletin-*-v1.html"):
        html, text = html_path.read_text(encoding="utf-8"), html_path.with_suffix(".txt").read_text(encoding="utf-8")
        msg = build_mime("reviews.bulletins@merseyside-safeguarding.gov.uk",
                         Message(to=("a@knowsley.gov.uk",), subject="s", html=html, text=text))
        part = msg.get_body(("html",)).get_content().encode("utf-8")
        assert len(part) < 100_000, (html_path.name, len(part))
        long = [line for line in text.splitlines() if len(line) >= 80]
        assert not long, (html_path.name, long)
    for brief in (folder / "briefings").glob("*.txt"):  # a URL is never broken: the one exception
        long = [line for line in brief.read_text(encoding="utf-8").splitlines()
                if len(line) >= 80 and "https://" not in line]
        assert not long, (brief.name, long)


def _pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page\b", pdf))


def test_a_briefing_prints_on_one_a4_page(built, browser):
    import json

    from reviews.learning.bulletin import render_bulletin

    folder, _report, _engine, cfg = built
    summary = json.loads((folder / "internal" / "summary.json").read_text(encoding="utf-8"))
    print_html = render_bulletin(summary, cfg, "region").print_html
    cut = print_html.index('<div class="briefing"')
    alone = print_html[:cut] + "</div></div></body></html>"
    page = browser.new_page()
    try:
        briefings = sorted((folder / "briefings").glob("*.html"))
        for brief in briefings:
            page.load_file(brief)
            pdf = page.pdf(title=brief.stem)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            (SCREENSHOTS / f"briefing-{brief.stem}.pdf").write_bytes(pdf)
            assert _pages(pdf) == 1, brief.name
        page.load_html(alone)
        without = _pages(page.pdf(title="t"))
    finally:
        page.close()
    # In the bulletin's PDF too: each briefing is exactly one more page.
    with_briefings = _pages(_region(folder).with_suffix(".pdf").read_bytes())
    assert len(briefings) == 2 and with_briefings == without + len(briefings)


def test_national_review_and_briefing_without_findings(built):
    folder, report, engine, cfg = built
    import json

    import sqlalchemy as sa

    from reviews.circulation.signoff import build_request, newest_bulletins
    from reviews.core import warehouse as wh

    slugs = {p.stem for p in (folder / "briefings").glob("*.html")}
    assert f"liverpool_{NATIONAL_REVIEW}" in slugs and f"sefton_{NO_FINDINGS_REVIEW}" not in slugs
    national = (folder / "briefings" / f"liverpool_{NATIONAL_REVIEW}.txt").read_text(encoding="utf-8")
    assert "The Child Safeguarding Practice Review Panel commissioned this national" in national
    assert "carried out this national" not in national
    with engine.connect() as conn:
        status = json.loads(conn.execute(sa.select(wh.bulletins.c.data_status).where(
            wh.bulletins.c.audience == "region")).scalar_one())
    assert [w["review_id"] for w in status["briefings_withheld"]] == [NO_FINDINGS_REVIEW]
    rows = newest_bulletins(engine, cfg, *REALISTIC_QUARTER)
    request = build_request(engine, cfg, {REALISTIC_QUARTER: rows})
    assert "### 7-minute briefings not sent" in request.body
    assert f"Sefton, review {NO_FINDINGS_REVIEW}: not sent, because no findings were recorded" in request.body
