"""The case tracker as the business unit uses it: a running `airflow standalone` over the hand-made
warehouse of tests/unit/test_journeys.py (journeys as of 17 June 2024), headless Chromium, Airflow's
own login page, then the tracker filtered to "due within 5 working days" (the three cases worked
out by hand there), a screenshot into var/screenshots/, axe-core in the page; the filter form used
as a person would (it must be allowed to submit); the case page, also checked by axe-core."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import requests

from reviews.core import warehouse as wh
from reviews.core.config import load_config
from reviews.journeys.store import run_journeys
from reviews.learning.browser import HeadlessChromium, chromium_available
from tests.browser.standalone import ROOT, airflow_standalone
from tests.browser.standalone import axe_violations as _axe
from tests.browser.standalone import goto as _goto
from tests.browser.standalone import log_in as _log_in
from tests.browser.standalone import wait_for as _wait
from tests.integration.deployment import PASSWORD, USER
from tests.unit.test_journeys import AS_OF, _fill

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def site():
    if not chromium_available():
        pytest.fail("Debian's chromium is needed for browser tests (make test installs it)")
    home = Path(tempfile.mkdtemp(prefix="reviews-tracker-"))
    data = home / "data"
    data.mkdir()
    url = f"sqlite:///{data / 'warehouse.db'}"
    engine = wh.make_engine(url)
    _fill(engine)
    run_journeys(engine, load_config(), AS_OF)
    engine.dispose()
    with airflow_standalone(home, url, data) as base:
        yield base


def _rows(page) -> list[list[str]]:
    return page.evaluate("[...document.querySelectorAll('#tracker tbody tr')].map(r => [...r.cells].map(c => c.innerText.trim()))")


def test_tracker_after_login_answers_what_is_due_in_5_working_days(site, tmp_path):
    for route in ("/reviews/tracker?due_within=5", "/reviews/cases/liverpool/LIV-N-1"):
        r = requests.get(f"{site}{route}", allow_redirects=False, timeout=30)
        assert r.status_code == 307 and r.headers["location"].startswith("/auth/login"), route
    with HeadlessChromium() as browser:
        page = browser.new_page(width=1400, height=1000)
        _log_in(page, site, "/reviews/tracker")
        _goto(page, f"{site}/reviews/tracker?due_within=5")
        _wait(page, "document.querySelector('#tracker')")
        rows = _rows(page)
        assert [(r[0].split("\n")[0].split(",")[0], r[2], r[4], r[5]) for r in rows] == [
            ("KNO-N-1", "Rapid review", "19 Jun 2024", "2"),
            ("STH-R-1", "Review completed", "21 Jun 2024", "4"),
            ("KNO-N-2", "Notification to the Panel", "24 Jun 2024", "5"),
        ]
        summary = page.evaluate("document.querySelector('#summary').innerText")
        assert "3 cases matching, due by 24 Jun 2024" in summary
        assert page.evaluate("document.documentElement.lang") == "en" and page.evaluate("document.title")
        violations = _axe(page)
        shot = page.screenshot()
        assert not violations, f"axe found on the tracker: {violations}"
        assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000
        out = ROOT / "var" / "screenshots"
        out.mkdir(parents=True, exist_ok=True)
        (out / "case_tracker.png").write_bytes(shot)
        (tmp_path / "case_tracker.png").write_bytes(shot)

        # The filter form, as a person uses it: choose Sefton, clear the due filter, submit.
        page.evaluate("document.querySelector('#partnership').value = 'sefton'")
        page.evaluate("document.querySelector('#due_within').value = ''")
        page.evaluate("document.querySelector('form.filters button[type=submit]').click()")
        _wait(page, "location.search.includes('partnership=sefton') && document.querySelector('#tracker')")
        assert sorted(r[0].split("\n")[0].split(",")[0] for r in _rows(page)) == ["SEF-N-1", "SEF-N-2"]
        finding = page.evaluate("document.querySelector('#tracker').innerText")
        assert "lcspr_missing: rapid review SEF-RR-1 chose an LCSPR" in finding

        # A case page from the tracker's link: its journey and the returns it came from.
        _goto(page, f"{site}/reviews/cases/liverpool/LIV-N-1")
        _wait(page, "document.querySelector('#stages')")
        text = page.evaluate("document.body.innerText")
        for words in ("Case LIV-N-1, Liverpool", "improvements published instead", "return_2024-06-14.xlsx",
                      "waiting for a correction"):
            assert words in text, words
        violations = _axe(page)
        assert not violations, f"axe found on the case page: {violations}"
        (tmp_path / "case_page.png").write_bytes(page.screenshot())
    bad = requests.get(f"{site}/reviews/tracker?due_within=%3Cscript%3E", timeout=30,
                       headers={"Authorization": "Bearer " + requests.post(
                           f"{site}/auth/token", json={"username": USER, "password": PASSWORD}, timeout=30
                       ).json()["access_token"]})
    assert bad.status_code == 400 and "<script>" not in bad.text
